// The checkout page's state: the server's price breakdown for the chosen coupon and points, and
// order placement with ONE Idempotency-Key per page visit, reused for every submit until an
// order exists, so a double click or a retry after a lost response makes one order.
import { reactive } from "vue";
import { ApiError, call, errorMessage, NETWORK_ERROR, type ApiClient, type Schemas } from "@/api/client";

export type Preview = Schemas["CheckoutPreviewOut"];
export type Order = Schemas["OrderOut"];

function asApiError(error: unknown): ApiError {
  return error instanceof ApiError ? error : new ApiError(0, "client_error", errorMessage(error));
}

function detail(error: ApiError, key: string): number | null {
  const value = (error.details as Record<string, unknown> | null)?.[key];
  return typeof value === "number" ? value : null;
}

export function createCheckoutStore(api: ApiClient, newKey: () => string = () => crypto.randomUUID()) {
  const state = reactive({
    preview: null as Preview | null,
    couponId: null as number | null,
    points: 0,
    loading: false,
    /** why the breakdown could not be had (cart_empty, already_purchased, ...) */
    error: null as ApiError | null,
    /** what the page changed on its own (points lowered to the new maximum, ...) */
    notice: "",
    submitting: false,
    submitError: null as ApiError | null,
    order: null as Order | null,
    idempotencyKey: newKey(),
  });
  let previewRun = 0;
  let placing: Promise<Order> | null = null;

  /** Fixes the choice after a refusal the page can resolve by itself; false when it cannot. */
  function adjustAfter(error: ApiError): boolean {
    if (error.code === "points_exceed_limit" && detail(error, "max_points") !== null) {
      state.points = detail(error, "max_points")!;
      state.notice = `${error.message} Points set to ${state.points}.`;
      return true;
    }
    if (error.code === "insufficient_points" && detail(error, "balance") !== null) {
      state.points = Math.min(state.points, detail(error, "balance")!);
      state.notice = `${error.message} Points set to ${state.points}.`;
      return true;
    }
    if (error.code === "coupon_invalid" && state.couponId !== null) {
      state.couponId = null;
      state.notice = `${error.message} The coupon was removed.`;
      return true;
    }
    return false;
  }

  /** Loads the breakdown for the current coupon and points; only the latest answer is kept. */
  async function refresh(): Promise<void> {
    const run = ++previewRun;
    state.loading = true;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const query = { points: state.points, ...(state.couponId !== null ? { user_coupon_id: state.couponId } : {}) };
          const preview = await call(api.GET("/api/v1/checkout/preview", { params: { query } }));
          if (run !== previewRun) return;
          state.preview = preview;
          state.error = null;
          return;
        } catch (error) {
          if (run !== previewRun) return;
          const apiError = asApiError(error);
          if (attempt < 3 && adjustAfter(apiError)) continue;
          state.error = apiError;
          return;
        }
      }
    } finally {
      if (run === previewRun) state.loading = false;
    }
  }

  function selectCoupon(userCouponId: number | null): Promise<void> {
    state.couponId = userCouponId;
    state.notice = "";
    return refresh();
  }

  function setPoints(points: number): Promise<void> {
    state.points = Math.max(0, Math.floor(points || 0));
    state.notice = "";
    return refresh();
  }

  /** Places the order. Concurrent calls share one request; every call sends the same key. */
  function submit(): Promise<Order> {
    if (state.order) return Promise.resolve(state.order);
    placing ??= (async () => {
      state.submitting = true;
      state.submitError = null;
      try {
        const order = await call(
          api.POST("/api/v1/orders", {
            params: { header: { "Idempotency-Key": state.idempotencyKey } },
            body: { pay_type: "alipay", user_coupon_id: state.couponId, points: state.points },
          }),
        );
        state.order = order;
        return order;
      } catch (error) {
        state.submitError = asApiError(error);
        throw state.submitError;
      } finally {
        state.submitting = false;
        placing = null;
      }
    })();
    return placing;
  }

  /** A failed submit the user may simply retry (the same key makes it safe). */
  const retryable = (error: ApiError | null) => !!error && (error.code === NETWORK_ERROR || error.status >= 500);

  return { state, refresh, selectCoupon, setPoints, submit, retryable };
}

export type CheckoutStore = ReturnType<typeof createCheckoutStore>;

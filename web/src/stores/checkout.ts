// The checkout page's state: the server's price breakdown for the chosen coupon and points, and
// order placement with ONE Idempotency-Key per page visit, reused for every submit until an
// order exists, so a double click or a retry after a lost response makes one order.
//
// `wanted` is what the buyer last asked for; `applied` is what the breakdown on screen was priced
// with. The page shows `applied` in its controls, so no control ever shows a choice the total
// ignores (offline, a tapped coupon does not stay highlighted); a failed refresh keeps `wanted`
// for the retry.
//
// The payment method is the buyer's first choice (`pay_type`), not a lock-in: the page pays with
// whatever is chosen when the order exists. Once a submit may have reached the server (a lost
// answer), later submits with the same key send the pay_type it sent, so switching method then
// replays the same order instead of being refused as a different body (idempotency_key_reused).
//
// A lost answer may hide an order that exists: the server placed it (and emptied the cart) but the
// page never heard. When the buyer then changes the coupon or points, the breakdown is refused
// (`cart_empty`, or `already_purchased` naming the order that holds the courses), and a submit of
// the new choice with the same key is refused as `idempotency_key_reused` (naming the order). Either
// way the store recovers that order (the lost request sent again, or the order named) and marks it
// `placedBefore`: the page shows it with its real amounts instead of a failure, and never places a
// second one.
import { computed, reactive } from "vue";
import { ApiError, call, CLIENT_ERROR, NETWORK_ERROR, type ApiClient, type Schemas } from "@/api/client";
import type { Provider } from "@/stores/payment";

export type Preview = Schemas["CheckoutPreviewOut"];
export type Order = Schemas["OrderOut"];
type PlaceOrderBody = Schemas["PlaceOrderIn"];
export interface Choice {
  couponId: number | null;
  points: number;
}
/** Something the page changed on its own, to tell the buyer (a message key and its values). */
export interface Notice {
  key: "checkout.pointsLowered" | "checkout.pointsCapped" | "checkout.couponDropped";
  params: Record<string, number>;
}

function asApiError(error: unknown): ApiError {
  return error instanceof ApiError ? error : new ApiError(0, CLIENT_ERROR, error instanceof Error ? error.message : String(error));
}

function detail(error: ApiError, key: string): number | null {
  const value = (error.details as Record<string, unknown> | null)?.[key];
  return typeof value === "number" ? value : null;
}

export function createCheckoutStore(api: ApiClient, newKey: () => string = () => crypto.randomUUID()) {
  const state = reactive({
    preview: null as Preview | null,
    wanted: { couponId: null, points: 0 } as Choice,
    applied: null as Choice | null,
    loading: false,
    /** why the breakdown could not be had for `wanted` (cart_empty, already_purchased, offline, ...) */
    error: null as ApiError | null,
    notice: null as Notice | null,
    submitting: false,
    submitError: null as ApiError | null,
    order: null as Order | null,
    idempotencyKey: newKey(),
    payType: "alipay" as Provider,
    /** what a submit that may have reached the server sent with this key (its answer was lost) */
    sent: null as PlaceOrderBody | null,
    /** `order` was placed by that earlier submit, with the choices it sent, not the ones on screen */
    placedBefore: false,
  });
  let previewRun = 0;
  let placing: Promise<Order> | null = null;

  /** Fixes the choice after a refusal the page can resolve by itself; false when it cannot. */
  function adjustAfter(error: ApiError): boolean {
    const max = detail(error, "max_points");
    if (error.code === "points_exceed_limit" && max !== null) {
      state.wanted.points = max;
      state.notice = { key: "checkout.pointsLowered", params: { points: max } };
      return true;
    }
    const balance = detail(error, "balance");
    if (error.code === "insufficient_points" && balance !== null) {
      state.wanted.points = Math.min(state.wanted.points, balance);
      state.notice = { key: "checkout.pointsCapped", params: { points: state.wanted.points } };
      return true;
    }
    if (error.code === "coupon_invalid" && state.wanted.couponId !== null) {
      state.wanted.couponId = null;
      state.notice = { key: "checkout.couponDropped", params: {} };
      return true;
    }
    return false;
  }

  /** Prices `wanted`; only the latest answer is kept. */
  async function refresh(): Promise<void> {
    const run = ++previewRun;
    state.loading = true;
    try {
      for (let attempt = 0; ; attempt++) {
        const asked = { ...state.wanted };
        try {
          const query = { points: asked.points, ...(asked.couponId !== null ? { user_coupon_id: asked.couponId } : {}) };
          const preview = await call(api.GET("/api/v1/checkout/preview", { params: { query } }));
          if (run !== previewRun) return;
          state.preview = preview;
          state.applied = asked;
          state.error = null;
          return;
        } catch (error) {
          if (run !== previewRun) return;
          const apiError = asApiError(error);
          if (attempt < 3 && adjustAfter(apiError)) continue;
          state.error = apiError;
          if (mayHideLostOrder(apiError)) await recoverLostOrder();
          return;
        }
      }
    } finally {
      if (run === previewRun) state.loading = false;
    }
  }

  function selectCoupon(userCouponId: number | null): Promise<void> {
    state.wanted.couponId = userCouponId;
    state.notice = null;
    return refresh();
  }

  function setPoints(points: number): Promise<void> {
    state.wanted.points = Math.max(0, Math.floor(points || 0));
    state.notice = null;
    return refresh();
  }

  /** The breakdown on screen is the price of what the buyer asked for. */
  const settled = computed(
    () =>
      !!state.preview &&
      !state.error &&
      !state.loading &&
      state.applied?.couponId === state.wanted.couponId &&
      state.applied?.points === state.wanted.points,
  );

  /** The cart was emptied or its courses held since a submit whose answer was lost: by that order? */
  const mayHideLostOrder = (error: ApiError) =>
    !!state.sent && !state.order && (error.code === "cart_empty" || error.code === "already_purchased");

  /** Sends the lost request again (same key, same body): the server answers with the order it made. */
  async function recoverLostOrder(): Promise<void> {
    if (placing || !state.sent) return;
    const lastSubmitError = state.submitError;
    try {
      await place(state.sent);
      state.placedBefore = true;
    } catch {
      // Not placed after all (the cart was emptied elsewhere): the breakdown's refusal stands.
      state.submitError = lastSubmitError;
    }
  }

  /** The order a refused changed-choice submit names (idempotency_key_reused): the lost submit's. */
  async function orderNamedBy(error: ApiError): Promise<Order | null> {
    const orderNo = (error.details as { order_no?: unknown } | null)?.order_no;
    if (error.code !== "idempotency_key_reused" || typeof orderNo !== "string") return null;
    try {
      return await call(api.GET("/api/v1/orders/{order_no}", { params: { path: { order_no: orderNo } } }));
    } catch {
      return null;
    }
  }

  /** A failed submit the user may simply retry (the same key makes it safe). */
  const retryable = (error: ApiError | null) => !!error && (error.code === NETWORK_ERROR || error.status >= 500);

  /** POST /orders with this visit's key. Concurrent calls share one request. */
  function place(body: PlaceOrderBody): Promise<Order> {
    if (state.order) return Promise.resolve(state.order);
    placing ??= (async () => {
      state.submitting = true;
      state.submitError = null;
      try {
        const order = await call(api.POST("/api/v1/orders", { params: { header: { "Idempotency-Key": state.idempotencyKey } }, body }));
        state.order = order;
        return order;
      } catch (error) {
        const apiError = asApiError(error);
        const earlier = await orderNamedBy(apiError);
        if (earlier) {
          state.order = earlier;
          state.placedBefore = true;
          return earlier;
        }
        state.submitError = apiError;
        if (retryable(apiError) || apiError.code === "idempotency_key_in_use") state.sent ??= body;
        throw apiError;
      } finally {
        state.submitting = false;
        placing = null;
      }
    })();
    return placing;
  }

  /** Places the order as priced on screen; every call sends the same key. */
  function submit(): Promise<Order> {
    const choice = state.applied ?? state.wanted;
    // After a lost answer, the pay_type that request sent: switching method alone then replays it.
    return place({ pay_type: state.sent?.pay_type ?? state.payType, user_coupon_id: choice.couponId, points: choice.points });
  }

  return { state, settled, refresh, selectCoupon, setPoints, submit, retryable };
}

export type CheckoutStore = ReturnType<typeof createCheckoutStore>;

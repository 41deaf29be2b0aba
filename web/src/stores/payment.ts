// Paying an order: which provider and channel, asking the API for what to open, and leaving for a
// provider's page and coming back.
//
// The channel follows the device: where the primary pointer is a finger (`(pointer: coarse)`: a
// phone or a tablet, whatever its width) the buyer is in a phone browser, so Alipay is wap pay
// and WeChat Pay is H5 (both hand over to the provider's app); elsewhere (a mouse or a trackpad)
// Alipay is page pay and WeChat Pay is Native, a QR code the buyer scans with the WeChat app. The
// pointer, not the width: a narrow desktop window still cannot open WeChat Pay H5, and a tablet is
// held like a phone.
//
// Before the browser goes to a provider's page, the current history entry becomes the order's page
// (?payment=left), so Back lands on the order; the order number is also kept in sessionStorage,
// because Alipay's own "cancel" link comes back through the API's return URL without one
// (/orders?payment=..., see router.ts).
import { reactive } from "vue";
import { ApiError, call, type ApiClient, type Schemas } from "@/api/client";

export type Provider = Schemas["PlaceOrderIn"]["pay_type"];
export type Channel = Schemas["PayOut"]["channel"];
export type PayStart = Schemas["PayOut"];
type Order = Schemas["OrderOut"];

export const PROVIDERS: readonly Provider[] = ["alipay", "wechat"];
export const PAYING_KEY = "shop.paying";
/** Where this matches, the buyer pays in a phone browser (wap, H5); else on a computer (page, QR). */
export const PHONE_POINTER_QUERY = "(pointer: coarse)";

export function pointerIsFinger(): boolean {
  return typeof window !== "undefined" && typeof window.matchMedia === "function" && window.matchMedia(PHONE_POINTER_QUERY).matches;
}

export function channelFor(provider: Provider, onPhone: boolean): Channel {
  if (provider === "wechat") return onPhone ? "h5" : "native";
  return onPhone ? "wap" : "page";
}

export function createPayment(api: ApiClient, storage: Storage | null, onPhone: () => boolean = pointerIsFinger) {
  const state = reactive({
    /** the order whose provider page the browser is on its way to (this page is about to unload) */
    leavingFor: null as string | null,
    leavingWith: null as Provider | null,
    /** providers this server refused (payment_provider_unavailable): not offered again this visit */
    unavailable: [] as Provider[],
    /** order number -> its WeChat Pay Native code_url, to draw as a QR code */
    codes: {} as Record<string, string>,
  });

  const offered = (provider: Provider) => !state.unavailable.includes(provider);

  function markUnavailable(provider: unknown) {
    if (PROVIDERS.includes(provider as Provider) && offered(provider as Provider)) state.unavailable.push(provider as Provider);
  }

  /**
   * What to open to pay `orderNo` with `provider` on this device (the API reuses an open attempt of
   * the same provider and channel). A refusal naming the provider as unavailable is remembered.
   */
  async function start(orderNo: string, provider: Provider): Promise<PayStart> {
    let answer: PayStart;
    try {
      answer = await call(
        api.POST("/api/v1/orders/{order_no}/pay", {
          params: { path: { order_no: orderNo } },
          body: { provider, channel: channelFor(provider, onPhone()) },
        }),
      );
    } catch (error) {
      if (error instanceof ApiError && error.code === "payment_provider_unavailable") {
        markUnavailable((error.details as { provider?: unknown } | null)?.provider ?? provider);
      }
      throw error;
    }
    if (answer.code_url) state.codes[orderNo] = answer.code_url;
    else if (!answer.pay_url && !answer.h5_url) throw new ApiError(502, "http_502", "The server answered no payment URL.");
    return answer;
  }

  /**
   * The provider to offer first for an order: the one of its latest attempt still open (the buyer's
   * last choice), else of its latest attempt, else its checkout choice; one this server offers.
   */
  function preferredProvider(order: Pick<Order, "pay_type" | "payment_attempts">): Provider {
    const newestFirst = [...(order.payment_attempts ?? [])].sort((a, b) => b.created_at.localeCompare(a.created_at));
    const latest = newestFirst.find((a) => a.status === "open") ?? newestFirst[0];
    const wanted = latest?.provider ?? order.pay_type;
    return offered(wanted) ? wanted : (PROVIDERS.find(offered) ?? wanted);
  }

  function remember(orderNo: string, provider: Provider) {
    state.leavingFor = orderNo;
    state.leavingWith = provider;
    try {
      storage?.setItem(PAYING_KEY, orderNo);
    } catch {
      /* Back still works; only the cashier's cancel link will not know the order */
    }
  }

  /** The order last sent to a provider's page from this tab, forgotten once read. */
  function takeRemembered(): string | null {
    try {
      const orderNo = storage?.getItem(PAYING_KEY) ?? null;
      storage?.removeItem(PAYING_KEY);
      return orderNo && /^\d{1,32}$/.test(orderNo) ? orderNo : null;
    } catch {
      return null;
    }
  }

  return { state, onPhone, offered, markUnavailable, start, preferredProvider, remember, takeRemembered };
}

export type Payment = ReturnType<typeof createPayment>;

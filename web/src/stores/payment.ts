// Leaving for the cashier and coming back. Before the browser goes to Alipay, the current history
// entry becomes the order's page (?payment=left), so Back from the cashier lands on the order; the
// order number is also kept in sessionStorage, because the cashier's own "cancel" link comes back
// through the API's return URL without one (/orders?payment=..., see router.ts).
import { reactive } from "vue";
import { call, type ApiClient } from "@/api/client";

export const PAYING_KEY = "shop.paying";

export function createPayment(api: ApiClient, storage: Storage | null) {
  /** the order whose cashier the browser is on its way to (this page is about to unload) */
  const state = reactive({ leavingFor: null as string | null });

  async function payUrl(orderNo: string): Promise<string> {
    const { pay_url } = await call(
      api.POST("/api/v1/orders/{order_no}/pay", {
        params: { path: { order_no: orderNo } },
        body: { provider: "alipay", channel: "page" },
      }),
    );
    if (!pay_url) throw new Error("The server answered no Alipay URL.");
    return pay_url;
  }

  function remember(orderNo: string) {
    state.leavingFor = orderNo;
    try {
      storage?.setItem(PAYING_KEY, orderNo);
    } catch {
      /* Back still works; only the cashier's cancel link will not know the order */
    }
  }

  /** The order last sent to the cashier from this tab, forgotten once read. */
  function takeRemembered(): string | null {
    try {
      const orderNo = storage?.getItem(PAYING_KEY) ?? null;
      storage?.removeItem(PAYING_KEY);
      return orderNo && /^\d{1,32}$/.test(orderNo) ? orderNo : null;
    } catch {
      return null;
    }
  }

  return { state, payUrl, remember, takeRemembered };
}

export type Payment = ReturnType<typeof createPayment>;

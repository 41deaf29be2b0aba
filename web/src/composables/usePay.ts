import { useRouter } from "vue-router";
import type { Schemas } from "@/api/client";
import { useShop } from "@/shop";
import type { Provider } from "@/stores/payment";

/** The order page's query asking it to show the WeChat Pay QR code. */
export const SHOW_QR_QUERY = { pay: "wechat" } as const;

/**
 * Pays an order with a provider (by default the one the buyer last chose for it). A provider page
 * (Alipay's cashier, WeChat Pay H5) is left for after the page the buyer is on has become the
 * order's page (router.replace), so Back lands there, told the order is not paid yet. A QR code
 * (WeChat Pay Native) is shown on the order's page. Throws (ApiError) when the API refuses; the
 * caller says so.
 */
export function usePay() {
  const { payment, navigate } = useShop();
  const router = useRouter();
  return async function pay(order: Pick<Schemas["OrderOut"], "order_no" | "pay_type" | "payment_attempts">, provider?: Provider): Promise<void> {
    const orderNo = order.order_no;
    const chosen = provider ?? payment.preferredProvider(order);
    const start = await payment.start(orderNo, chosen);
    if (start.code_url) {
      const here = router.currentRoute.value;
      // The checkout is spent once its order exists, and the order page only changes its query.
      const replace = here.name === "checkout" || (here.name === "order" && here.params.orderNo === orderNo);
      await router[replace ? "replace" : "push"]({ name: "order", params: { orderNo }, query: SHOW_QR_QUERY });
      return;
    }
    payment.remember(orderNo, chosen);
    await router.replace({ name: "order", params: { orderNo }, query: { payment: "left" } });
    navigate((start.pay_url ?? start.h5_url)!);
  };
}

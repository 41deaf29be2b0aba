import { useRouter } from "vue-router";
import { useShop } from "@/shop";

/**
 * Sends the buyer to the cashier for an order. The page they leave becomes the order's page first
 * (router.replace), so coming back with Back lands there, told the order is not paid yet. Throws
 * (ApiError) when the API refuses; the caller says so.
 */
export function usePay() {
  const { payment, navigate } = useShop();
  const router = useRouter();
  return async function pay(orderNo: string): Promise<void> {
    const url = await payment.payUrl(orderNo);
    payment.remember(orderNo);
    await router.replace({ name: "order", params: { orderNo }, query: { payment: "left" } });
    navigate(url);
  };
}

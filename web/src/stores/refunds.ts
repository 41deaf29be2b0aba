// Refunds as the buyer sees them: which lines of an order can still be refunded, asking for it
// (POST /orders/{order_no}/refunds), and whether a refund is still on its way through the provider.
// The server decides everything (the window, the amounts, the lines already held); these helpers
// only keep the page from offering what it would refuse, and the page still shows every refusal.
import { call, type ApiClient, type Schemas } from "@/api/client";
import type { Order } from "@/stores/orders";

export type Refund = Schemas["RefundOut"];
export type RefundStatus = Refund["status"];
export type OrderLine = Order["lines"][number];

/** The order states a refund can be asked for in (orders/services/refunds.py REFUNDABLE). */
const REFUNDABLE_STATUSES: Order["status"][] = ["paid", "partially_refunded"];
/** Approved and not finished: the provider is at it, and the outcome comes without staff. */
const IN_FLIGHT: RefundStatus[] = ["approved", "processing"];

/** A line whose refund was turned down (or that never had one) can be asked for again. */
export const lineIsFree = (line: Pick<OrderLine, "refund_status">) => line.refund_status === null || line.refund_status === "rejected";

/** Where the order's refund window stands at `now`: open, closed (past its end), or none (not paid). */
export function refundWindow(order: Pick<Order, "status" | "refundable_until">, now: number): "open" | "closed" | "none" {
  if (!REFUNDABLE_STATUSES.includes(order.status) || !order.refundable_until) return "none";
  return new Date(order.refundable_until).getTime() > now ? "open" : "closed";
}

/** The lines the buyer may ask a refund for now: the window is open and no live refund holds them. */
export function refundableLines(order: Order, now: number): OrderLine[] {
  return refundWindow(order, now) === "open" ? order.lines.filter(lineIsFree) : [];
}

/** A refund is between approval and its outcome: worth looking at the order again shortly. */
export const refundsInFlight = (order: Pick<Order, "refunds">) => order.refunds.some((refund) => IN_FLIGHT.includes(refund.status));

/** Whether an enrolment (GET /me/courses) can still be refunded: bought, window open, not held by a refund. */
export function enrolmentRefundable(
  owned: Pick<Schemas["OwnedCourseOut"], "order_no" | "order_line_id" | "refundable_until" | "refund_status">,
  now: number,
): boolean {
  return (
    !!owned.order_no &&
    owned.order_line_id !== null &&
    !!owned.refundable_until &&
    new Date(owned.refundable_until).getTime() > now &&
    lineIsFree(owned)
  );
}

/**
 * The Idempotency-Key of a refund request: the same lines and reason sent again (after an answer
 * that never came) carry the same key, so the server answers with the refund it made instead of
 * refusing the lines as taken; another request gets a new key. `done()` after an answer.
 */
export function refundRequestKeys(newKey: () => string = () => crypto.randomUUID()) {
  let last: { request: string; key: string } | null = null;
  return {
    keyFor(orderLineIds: number[], reason: string): string {
      const request = JSON.stringify([[...orderLineIds].sort((a, b) => a - b), reason.trim()]);
      if (last?.request !== request) last = { request, key: newKey() };
      return last.key;
    },
    done() {
      last = null;
    },
  };
}

export function requestRefund(api: ApiClient, orderNo: string, orderLineIds: number[], reason: string, key: string): Promise<Refund> {
  return call(
    api.POST("/api/v1/orders/{order_no}/refunds", {
      params: { path: { order_no: orderNo }, header: { "Idempotency-Key": key } },
      body: { order_line_ids: orderLineIds, reason: reason.trim() },
    }),
  );
}

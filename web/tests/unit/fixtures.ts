import type { Schemas } from "@/api/client";

export function course(id: number, price: string, name = `Course ${id}`): Schemas["CourseOut"] {
  return { id, name, description: `About ${name}`, picture_url: `/static/demo/course-${id}.svg`, price, is_active: true };
}

export function cartItem(id: number, price: string, selected = true): Schemas["CartItemOut"] {
  return { id, course: course(id, price), selected, created_at: "2026-11-25T10:00:00Z" };
}

export function cart(items: Schemas["CartItemOut"][], selectedTotal: string): Schemas["CartOut"] {
  return { items, count: items.length, selected_count: items.filter((i) => i.selected).length, selected_total: selectedTotal };
}

export function usableCoupon(id: number, discount: string): Schemas["UsableCouponOut"] {
  return {
    id,
    coupon_id: id,
    name: "满100减20",
    kind: "fixed",
    threshold: "100.00",
    amount_off: "20.00",
    percent_off: null,
    starts_at: "2026-11-01T00:00:00Z",
    ends_at: "2027-11-01T00:00:00Z",
    status: "unused",
    discount,
  };
}

export function preview(overrides: Partial<Schemas["CheckoutPreviewOut"]> = {}): Schemas["CheckoutPreviewOut"] {
  return {
    lines: [
      { course_id: 1, name: "Python from zero", picture_url: "/static/demo/course-1.svg", price: "199.00" },
      { course_id: 2, name: "Django in depth", picture_url: "/static/demo/course-2.svg", price: "299.00" },
    ],
    subtotal: "498.00",
    usable_coupons: [usableCoupon(7, "20.00")],
    points_balance: 5000,
    max_points: 4980,
    points_per_yuan: 10,
    points_step: 1,
    coupon_discount: "0.00",
    points_discount: "0.00",
    pay_amount: "498.00",
    ...overrides,
  };
}

export function order(overrides: Partial<Schemas["OrderOut"]> = {}): Schemas["OrderOut"] {
  return {
    order_no: "20261125100000123456",
    status: "pending",
    pay_type: "alipay",
    payment_attempts: [],
    subtotal: "498.00",
    coupon_discount: "20.00",
    points_used: 1000,
    points_discount: "100.00",
    pay_amount: "378.00",
    user_coupon_id: 7,
    expires_at: "2026-11-25T10:30:00Z",
    paid_at: null,
    cancelled_at: null,
    cancel_reason: "",
    created_at: "2026-11-25T10:00:00Z",
    lines: [],
    refundable_until: null,
    refunds: [],
    ...overrides,
  };
}

export function orderLine(id: number, courseId: number, price: string, overrides: Partial<Schemas["OrderLineOut"]> = {}): Schemas["OrderLineOut"] {
  return {
    id,
    course_id: courseId,
    name: `Course ${courseId}`,
    picture_url: `/static/demo/course-${courseId}.svg`,
    price,
    refundable_amount: price,
    refund_status: null,
    ...overrides,
  };
}

/** A paid order of two lines (Course 1 for ¥199.00, Course 2 for ¥299.00), refundable for a week. */
export function paidOrder(overrides: Partial<Schemas["OrderOut"]> = {}): Schemas["OrderOut"] {
  const paidAt = new Date(Date.now() - 60_000).toISOString();
  return order({
    status: "paid",
    subtotal: "498.00",
    coupon_discount: "0.00",
    points_used: 0,
    points_discount: "0.00",
    pay_amount: "498.00",
    user_coupon_id: null,
    paid_at: paidAt,
    refundable_until: new Date(Date.now() + 7 * 86_400_000).toISOString(),
    lines: [orderLine(11, 1, "199.00"), orderLine(12, 2, "299.00")],
    payment_attempts: [{ provider: "alipay", channel: "page", status: "paid", amount: "498.00", created_at: paidAt, paid_at: paidAt }],
    ...overrides,
  });
}

export function refund(id: number, lineIds: number[], amount: string, overrides: Partial<Schemas["RefundOut"]> = {}): Schemas["RefundOut"] {
  return {
    id,
    status: "approved",
    amount,
    reason: "",
    provider: "alipay",
    lines: lineIds.map((lineId) => ({ order_line_id: lineId, course_id: lineId - 10, amount })),
    rejection_reason: "",
    created_at: new Date().toISOString(),
    decided_at: new Date().toISOString(),
    completed_at: null,
    ...overrides,
  };
}

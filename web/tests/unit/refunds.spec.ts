import { afterEach, describe, expect, test, vi } from "vitest";
import { ApiError } from "@/api/client";
import { setLocale } from "@/i18n";
import { errorText } from "@/i18n/errors";
import { createOwnership } from "@/stores/ownership";
import { enrolmentRefundable, refundableLines, refundRequestKeys, refundsInFlight, refundWindow } from "@/stores/refunds";
import MyCoursesView from "@/views/MyCoursesView.vue";
import OrderDetailView from "@/views/OrderDetailView.vue";
import { orderLine, paidOrder, refund } from "./fixtures";
import { envelope, fakeBackend, json, mountPage, settle, testShop } from "./fakeApi";

afterEach(() => {
  document.body.innerHTML = "";
});

const NO = "20261125100000123456";
const NOW = Date.parse("2026-11-25T10:00:00Z");
const inADay = new Date(NOW + 86_400_000).toISOString();
const aDayAgo = new Date(NOW - 86_400_000).toISOString();

/** Confirms Element Plus's dialog, which loads when first needed. */
async function confirmDialog(expected: string) {
  const button = await vi.waitFor(() => {
    const found = document.querySelector<HTMLButtonElement>(".el-message-box__btns .el-button--primary");
    if (!found) throw new Error("no dialog yet");
    return found;
  });
  expect(document.querySelector(".el-message-box")?.textContent).toContain(expected);
  button.click();
}

describe("which lines can be refunded", () => {
  test("inside the window of a paid or partly refunded order, the lines no live refund holds", () => {
    const order = paidOrder({
      status: "partially_refunded",
      refundable_until: inADay,
      lines: [
        orderLine(11, 1, "199.00", { refund_status: "succeeded" }),
        orderLine(12, 2, "299.00", { refund_status: "rejected" }),
        orderLine(13, 3, "99.00"),
        orderLine(14, 4, "99.00", { refund_status: "processing" }),
        orderLine(15, 5, "99.00", { refund_status: "failed" }),
      ],
    });
    expect(refundWindow(order, NOW)).toBe("open");
    expect(refundableLines(order, NOW).map((line) => line.id)).toEqual([12, 13]);
  });

  test("nothing once the window has closed, nor for an order that was never paid", () => {
    expect(refundWindow(paidOrder({ refundable_until: aDayAgo }), NOW)).toBe("closed");
    expect(refundableLines(paidOrder({ refundable_until: aDayAgo }), NOW)).toEqual([]);
    expect(refundWindow(paidOrder({ status: "pending", paid_at: null, refundable_until: null }), NOW)).toBe("none");
    expect(refundWindow(paidOrder({ status: "refunded", refundable_until: inADay }), NOW)).toBe("none");
    expect(refundableLines(paidOrder({ status: "cancelled", refundable_until: inADay }), NOW)).toEqual([]);
  });

  test("a refund is in flight between approval and its outcome, not while it waits for staff", () => {
    expect(refundsInFlight(paidOrder({ refunds: [refund(1, [11], "199.00", { status: "approved" })] }))).toBe(true);
    expect(refundsInFlight(paidOrder({ refunds: [refund(1, [11], "199.00", { status: "processing" })] }))).toBe(true);
    expect(refundsInFlight(paidOrder({ refunds: [refund(1, [11], "199.00", { status: "requested" })] }))).toBe(false);
    expect(refundsInFlight(paidOrder({ refunds: [refund(1, [11], "199.00", { status: "succeeded" })] }))).toBe(false);
  });

  test("an enrolment is refundable when bought, inside its window and not held by a refund", () => {
    const owned = { order_no: NO, order_line_id: 11, refundable_until: inADay, refund_status: null };
    expect(enrolmentRefundable(owned, NOW)).toBe(true);
    expect(enrolmentRefundable({ ...owned, refund_status: "rejected" }, NOW)).toBe(true);
    expect(enrolmentRefundable({ ...owned, refund_status: "requested" }, NOW)).toBe(false);
    expect(enrolmentRefundable({ ...owned, refundable_until: aDayAgo }, NOW)).toBe(false);
    // Given by staff: no order to refund.
    expect(enrolmentRefundable({ order_no: null, order_line_id: null, refundable_until: null, refund_status: null }, NOW)).toBe(false);
  });
});

describe("owned courses", () => {
  test("the API's `owned` marks a course and, once refunded, unmarks it", () => {
    const ownership = createOwnership();
    ownership.fromCourse({ id: 2, owned: true });
    expect(ownership.owns(2)).toBe(true);
    ownership.fromCourse({ id: 2, owned: false });
    expect(ownership.owns(2)).toBe(false);
  });
});

describe("refusals, told in the buyer's language", () => {
  test("a closed window names when it closed", async () => {
    const closed = new ApiError(409, "refund_window_closed", "Too late.", { refundable_until: "2026-11-25T10:00:00+00:00" });
    await setLocale("zh-CN");
    expect(errorText(closed)).toMatch(/^退款期限已于 2026年11月25日 \d\d:00 截止，不能再申请退款。$/);
    await setLocale("en");
    expect(errorText(closed)).toMatch(/^Refunds could be asked for until 25 Nov 2026, \d\d:00: it is too late now\.$/);
    expect(errorText(new ApiError(409, "refund_window_closed", "Too late.", { refundable_until: null }))).toBe("The time to ask for a refund has passed.");
    expect(errorText(new ApiError(409, "order_not_refundable", "No.", { status: "pending" }))).toBe("This order cannot be refunded: only paid orders can.");
    expect(errorText(new ApiError(409, "order_line_already_refunded", "No.", { order_line_ids: [11] }))).toBe("That course is refunded or being refunded already.");
  });
});

describe("a refund request's Idempotency-Key", () => {
  test("the same lines and reason keep their key until answered; another request gets a new one", () => {
    let made = 0;
    const keys = refundRequestKeys(() => `key-${++made}`);
    expect(keys.keyFor([12, 11], "Not for me")).toBe("key-1");
    expect(keys.keyFor([11, 12], " Not for me ")).toBe("key-1");
    expect(keys.keyFor([11], "Not for me")).toBe("key-2");
    expect(keys.keyFor([11], "")).toBe("key-3");
    keys.done();
    expect(keys.keyFor([11], "")).toBe("key-4");
  });
});

describe("refunds on the order page", () => {
  test("ticks a line, asks with a reason after confirming, and follows the refund to its outcome", async () => {
    const approved = refund(5, [12], "299.00", { status: "approved", reason: "Not for me" });
    const backend = fakeBackend()
      .on("GET", `/api/v1/orders/${NO}`, () => json(200, paidOrder()))
      .on("GET", `/api/v1/orders/${NO}`, () =>
        json(200, paidOrder({ lines: [orderLine(11, 1, "199.00"), orderLine(12, 2, "299.00", { refund_status: "approved" })], refunds: [approved] })),
      )
      .on("GET", `/api/v1/orders/${NO}`, () =>
        json(
          200,
          paidOrder({
            status: "partially_refunded",
            lines: [orderLine(11, 1, "199.00"), orderLine(12, 2, "299.00", { refund_status: "succeeded" })],
            refunds: [{ ...approved, status: "succeeded", completed_at: new Date().toISOString() }],
          }),
        ),
      )
      .on("POST", `/api/v1/orders/${NO}/refunds`, () => json(201, approved));
    const { wrapper } = await mountPage(OrderDetailView, testShop(backend), `/orders/${NO}`);
    expect(wrapper.get('[data-test="refund-window"]').text()).toContain("You can ask for a refund until");
    expect(wrapper.find('[data-test="refund-form"]').exists()).toBe(false);

    await wrapper.get('[data-test="refund-start"]').trigger("click");
    const submit = wrapper.get('[data-test="refund-submit"]');
    expect(submit.attributes("disabled")).toBeDefined();
    await wrapper.get('[data-test="refund-line-12"] input').setValue(true);
    expect(wrapper.get('[data-test="refund-submit"]').text()).toBe("Refund 1 course");
    await wrapper.get("#refund-reason").setValue("  Not for me ");
    await wrapper.get('[data-test="refund-form"]').trigger("submit");
    await confirmDialog("Ask for a refund of “Course 2”? The money goes back to your Alipay");

    await vi.waitFor(() => expect(backend.calls("POST", `/api/v1/orders/${NO}/refunds`)).toHaveLength(1));
    expect(backend.calls("POST", `/api/v1/orders/${NO}/refunds`)[0].body).toEqual({ order_line_ids: [12], reason: "Not for me" });
    await settle();
    expect(wrapper.get('[data-test="refund-5"]').attributes("data-status")).toBe("approved");
    expect(wrapper.get('[data-test="order-line-2"] [data-test="line-refund"]').text()).toBe("Being refunded");
    // Only the line left is offered now.
    await wrapper.get('[data-test="refund-start"]').trigger("click");
    expect(wrapper.find('[data-test="refund-line-12"]').exists()).toBe(false);
    expect(wrapper.find('[data-test="refund-line-11"]').exists()).toBe(true);

    // Approved: the page looks again by itself until the refund has an outcome.
    await vi.waitFor(
      async () => {
        await settle();
        expect(wrapper.get('[data-test="refund-5"]').attributes("data-status")).toBe("succeeded");
      },
      { timeout: 5000, interval: 200 },
    );
    expect(wrapper.get('[data-test="refund-5"]').text()).toContain("¥299.00");
    expect(wrapper.get(".order-status").attributes("data-status")).toBe("partially_refunded");
    expect(wrapper.get('[data-test="order-announcement"]').text()).toBe("Refunded: the money went back the way you paid.");
    expect(wrapper.get('[data-test="order-line-2"] [data-test="line-refund"]').text()).toBe("Refunded");
    // With an outcome, the page stops looking: a poll would have come within 2 s.
    const looks = backend.calls("GET", `/api/v1/orders/${NO}`).length;
    await new Promise((r) => setTimeout(r, 2500));
    expect(backend.calls("GET", `/api/v1/orders/${NO}`)).toHaveLength(looks);
  }, 20_000);

  test("a refusal is told and the order loaded again", async () => {
    const backend = fakeBackend()
      .on("GET", `/api/v1/orders/${NO}`, () => json(200, paidOrder()))
      .on("GET", `/api/v1/orders/${NO}`, () => json(200, paidOrder({ refundable_until: aDayAgo })))
      .on("POST", `/api/v1/orders/${NO}/refunds`, () =>
        envelope(409, "refund_window_closed", "Too late.", { refundable_until: "2026-11-25T10:00:00+00:00" }),
      );
    const { wrapper } = await mountPage(OrderDetailView, testShop(backend), `/orders/${NO}?refund=11`);
    // Sent from My courses for one line: the form is open with it ticked.
    expect((wrapper.get('[data-test="refund-line-11"] input').element as HTMLInputElement).checked).toBe(true);
    await wrapper.get('[data-test="refund-form"]').trigger("submit");
    await confirmDialog("“Course 1”");
    await vi.waitFor(() => expect(document.body.textContent).toContain("Refunds could be asked for until 25 Nov 2026"));
    await settle();
    expect(backend.calls("GET", `/api/v1/orders/${NO}`)).toHaveLength(2);
    expect(wrapper.find('[data-test="refund-form"]').exists()).toBe(false);
    expect(wrapper.get('[data-test="refund-window"]').attributes("data-window")).toBe("closed");
  });

  test("sent again after a lost answer, the same request carries the same Idempotency-Key", async () => {
    const approved = refund(5, [11], "199.00", { status: "approved" });
    const backend = fakeBackend()
      .on("GET", `/api/v1/orders/${NO}`, () => json(200, paidOrder()))
      .on("POST", `/api/v1/orders/${NO}/refunds`, () => Promise.reject(new TypeError("Failed to fetch")))
      .on("GET", `/api/v1/orders/${NO}`, () => Promise.reject(new TypeError("Failed to fetch")))
      .on("POST", `/api/v1/orders/${NO}/refunds`, () => json(201, approved, { "Idempotent-Replayed": "true" }))
      .on("GET", `/api/v1/orders/${NO}`, () =>
        json(200, paidOrder({ lines: [orderLine(11, 1, "199.00", { refund_status: "approved" }), orderLine(12, 2, "299.00")], refunds: [approved] })),
      );
    const { wrapper } = await mountPage(OrderDetailView, testShop(backend), `/orders/${NO}?refund=11`);
    for (const sent of [1, 2]) {
      await wrapper.get('[data-test="refund-form"]').trigger("submit");
      await confirmDialog("“Course 1”");
      await vi.waitFor(() => expect(backend.calls("POST", `/api/v1/orders/${NO}/refunds`)).toHaveLength(sent));
      await settle();
      document.querySelectorAll(".el-overlay").forEach((overlay) => overlay.remove()); // the closed dialog
    }
    const keys = backend.calls("POST", `/api/v1/orders/${NO}/refunds`).map((r) => r.headers.get("Idempotency-Key"));
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[1]).toBe(keys[0]);
    await settle();
    expect(wrapper.get('[data-test="refund-5"]').attributes("data-status")).toBe("approved");
  });

  test("an unpaid order offers no refund", async () => {
    const backend = fakeBackend().on("GET", `/api/v1/orders/${NO}`, () =>
      json(200, paidOrder({ status: "pending", paid_at: null, refundable_until: null, payment_attempts: [], expires_at: inADay })),
    );
    const { wrapper } = await mountPage(OrderDetailView, testShop(backend), `/orders/${NO}`);
    expect(wrapper.find('[data-test="refund-panel"]').exists()).toBe(false);
  });
});

describe("my courses", () => {
  const owned = (courseId: number, overrides = {}) => ({
    course: { id: courseId, name: `Course ${courseId}`, picture_url: `/static/demo/course-${courseId}.svg` },
    order_no: NO,
    order_line_id: 10 + courseId,
    price_paid: "179.10",
    enrolled_at: "2026-11-25T10:00:00Z",
    refundable_until: new Date(Date.now() + 86_400_000).toISOString(),
    refund_status: null,
    ...overrides,
  });

  test("each course with what was paid, its order, and until when it can be refunded", async () => {
    const backend = fakeBackend().on("GET", "/api/v1/me/courses", () =>
      json(200, {
        count: 3,
        items: [owned(1), owned(2, { refund_status: "processing" }), owned(3, { refundable_until: new Date(Date.now() - 1000).toISOString() })],
      }),
    );
    const shop = testShop(backend);
    const { wrapper } = await mountPage(MyCoursesView, shop, "/me/courses");
    const first = wrapper.get('[data-test="my-course-1"]');
    expect(first.get('[data-test="price-paid"]').text()).toBe("¥179.10");
    expect(first.get('[data-test="order-link"]').attributes("href")).toBe(`/orders/${NO}`);
    expect(first.find('[data-test="refundable-until"]').exists()).toBe(true);
    expect(first.get('[data-test="request-refund"]').attributes("href")).toBe(`/orders/${NO}?refund=11`);
    // Being refunded: said so, and not offered again.
    const second = wrapper.get('[data-test="my-course-2"]');
    expect(second.get('[data-test="refund-state"]').text()).toBe("Being refunded");
    expect(second.find('[data-test="request-refund"]').exists()).toBe(false);
    // Past its window: no deadline, no refund.
    const third = wrapper.get('[data-test="my-course-3"]');
    expect(third.find('[data-test="refundable-until"]').exists()).toBe(false);
    expect(third.find('[data-test="request-refund"]').exists()).toBe(false);
    expect(backend.calls("GET", "/api/v1/me/courses")[0].query.get("page")).toBe("1");
    expect([1, 2, 3].every((id) => shop.ownership.owns(id))).toBe(true);
  });

  test("none yet: says so and leads to the courses", async () => {
    const backend = fakeBackend().on("GET", "/api/v1/me/courses", () => json(200, { count: 0, items: [] }));
    const { wrapper } = await mountPage(MyCoursesView, testShop(backend), "/me/courses");
    expect(wrapper.get('[data-test="my-courses-empty"]').text()).toContain("You have not bought any course yet.");
    expect(wrapper.get('[data-test="browse-courses"]').attributes("href")).toBe("/");
  });

  test("pages through a long list", async () => {
    const backend = fakeBackend().on("GET", "/api/v1/me/courses", (request) =>
      json(200, { count: 11, items: request.query.get("page") === "2" ? [owned(11)] : Array.from({ length: 10 }, (_, i) => owned(i + 1)) }),
    );
    const { wrapper } = await mountPage(MyCoursesView, testShop(backend), "/me/courses");
    expect(wrapper.findAll(".owned")).toHaveLength(10);
    await wrapper.get('[data-test="pager-next"]').trigger("click");
    await settle();
    expect(wrapper.findAll(".owned")).toHaveLength(1);
    expect(backend.calls("GET", "/api/v1/me/courses").at(-1)!.query.get("page")).toBe("2");
  });
});

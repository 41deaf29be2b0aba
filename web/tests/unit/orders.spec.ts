import { afterEach, describe, expect, test, vi } from "vitest";
import OrderDetailView from "@/views/OrderDetailView.vue";
import OrdersView from "@/views/OrdersView.vue";
import { order } from "./fixtures";
import { envelope, fakeBackend, json, mountPage, settle, testShop } from "./fakeApi";

afterEach(() => {
  document.body.innerHTML = "";
});

const NO = "20261125100000123456";
const inTenMinutes = () => new Date(Date.now() + 10 * 60_000).toISOString();

describe("order page", () => {
  test("back from the gateway, it waits for the notify and then shows the order paid", async () => {
    const backend = fakeBackend()
      .on("GET", `/api/v1/orders/${NO}`, () => json(200, order({ expires_at: inTenMinutes() })))
      .on("GET", `/api/v1/orders/${NO}`, () => json(200, order({ status: "paid", paid_at: new Date().toISOString() })));
    const { wrapper } = await mountPage(OrderDetailView, testShop(backend), `/orders/${NO}?payment=paid`);
    expect(wrapper.find('[data-test="payment-waiting"]').exists()).toBe(true);
    expect(wrapper.text()).toContain("left to pay");

    await vi.waitFor(
      async () => {
        await settle();
        expect(wrapper.find('[data-test="paid-banner"]').exists()).toBe(true);
      },
      { timeout: 5000, interval: 200 },
    );
    expect(wrapper.find('[data-test="payment-waiting"]').exists()).toBe(false);
    expect(wrapper.get('[data-test="order-amount"]').text()).toBe("¥378.00");
    expect(backend.calls("GET", `/api/v1/orders/${NO}`)).toHaveLength(2);
  });

  test("someone else's or a missing order shows the API's message", async () => {
    const backend = fakeBackend().on("GET", `/api/v1/orders/${NO}`, () => envelope(404, "order_not_found", "No such order."));
    const { wrapper } = await mountPage(OrderDetailView, testShop(backend), `/orders/${NO}`);
    expect(wrapper.get('[data-test="order-error"]').text()).toContain("We could not find this order.");
  });
});

describe("my orders", () => {
  test("a pending order shows its countdown; Pay opens the gateway", async () => {
    const navigate = vi.fn();
    const backend = fakeBackend()
      .on("GET", "/api/v1/orders", () =>
        json(200, { items: [order({ expires_at: inTenMinutes() }), order({ order_no: "2", status: "paid" })], count: 2 }),
      )
      .on("POST", `/api/v1/orders/${NO}/pay`, () => json(200, { pay_url: "http://pay.test/x" }));
    const { wrapper } = await mountPage(OrdersView, testShop(backend, navigate), "/orders");
    const pending = wrapper.get(`[data-test="order-${NO}"]`);
    expect(pending.text()).toMatch(/\d\d:\d\d left to pay/);
    expect(wrapper.get('[data-test="order-2"]').find('[data-test="order-pay"]').exists()).toBe(false);

    await pending.get('[data-test="order-pay"]').trigger("click");
    await settle();
    expect(navigate).toHaveBeenCalledWith("http://pay.test/x");
  });

  test("a refused payment shows the API's message", async () => {
    const backend = fakeBackend()
      .on("GET", "/api/v1/orders", () => json(200, { items: [order({ expires_at: inTenMinutes() })], count: 1 }))
      .on("POST", `/api/v1/orders/${NO}/pay`, () => envelope(409, "order_not_payable", "This order can no longer be paid."));
    const { wrapper } = await mountPage(OrdersView, testShop(backend), "/orders");
    await wrapper.get('[data-test="order-pay"]').trigger("click");
    await settle();
    expect(document.body.textContent).toContain("This order can no longer be paid.");
  });
});

describe("cancelling", () => {
  test("asks first (the dialog loads when needed), then cancels and says so", async () => {
    const backend = fakeBackend()
      .on("GET", "/api/v1/orders", () => json(200, { items: [order({ expires_at: inTenMinutes() })], count: 1 }))
      .on("POST", `/api/v1/orders/${NO}/cancel`, () => json(200, order({ status: "cancelled", cancel_reason: "user" })));
    const { wrapper } = await mountPage(OrdersView, testShop(backend), "/orders");
    await wrapper.get('[data-test="order-cancel"]').trigger("click");
    const confirm = await vi.waitFor(() => {
      const button = document.querySelector<HTMLButtonElement>(".el-message-box__btns .el-button--primary");
      if (!button) throw new Error("no dialog yet");
      return button;
    });
    expect(document.querySelector(".el-message-box")?.textContent).toContain(`Cancel order ${NO}? Its coupon and points come back to you.`);
    confirm.click();
    await vi.waitFor(() => expect(backend.calls("POST", `/api/v1/orders/${NO}/cancel`)).toHaveLength(1));
  });
});

describe("an order checkout found already placed", () => {
  test("says so, with the order's own amounts", async () => {
    const backend = fakeBackend().on("GET", `/api/v1/orders/${NO}`, () => json(200, order({ expires_at: inTenMinutes() })));
    const { wrapper } = await mountPage(OrderDetailView, testShop(backend), `/orders/${NO}?placed=before`);
    expect(wrapper.get('[data-test="placed-before"]').text()).toContain("This order was already placed.");
    expect(wrapper.get('[data-test="placed-before"]').text()).toContain("your later change was not applied");
    expect(wrapper.get('[data-test="order-amount"]').text()).toBe("¥378.00");
  });
});

// Never lose an unpaid order: the 待支付 banner, the cashier's returns, courses held by a pending order.
import { flushPromises, mount } from "@vue/test-utils";
import ElementPlus from "element-plus";
import { createMemoryHistory } from "vue-router";
import { afterEach, describe, expect, test, vi } from "vitest";
import PendingOrderBanner from "@/components/PendingOrderBanner.vue";
import { i18n } from "@/i18n";
import { createAppRouter } from "@/router";
import { ShopKey } from "@/shop";
import { createPendingOrders } from "@/stores/pending";
import CartView from "@/views/CartView.vue";
import OrderDetailView from "@/views/OrderDetailView.vue";
import { cart, cartItem, order } from "./fixtures";
import { BASE, fakeBackend, json, mountPage, settle, testShop } from "./fakeApi";
import { createApi } from "@/api/client";

afterEach(() => {
  document.body.innerHTML = "";
});

const NO = "20261125100000123456";
const inTenMinutes = () => new Date(Date.now() + 10 * 60_000).toISOString();
const line = (courseId: number) => ({ id: courseId, course_id: courseId, name: `Course ${courseId}`, picture_url: "/x.svg", price: "10.00", refundable_amount: "10.00", refund_status: null });
const pendingOrder = (overrides = {}) => order({ expires_at: inTenMinutes(), lines: [line(1), line(2)], ...overrides });

describe("pending orders", () => {
  test("hold their courses; an order past its deadline does not", async () => {
    const backend = fakeBackend().on("GET", "/api/v1/orders", (request) => {
      expect(request.query.get("status")).toBe("pending");
      return json(200, { items: [pendingOrder(), order({ order_no: "1", expires_at: "2020-01-01T00:00:00Z", lines: [line(3)] })], count: 2 });
    });
    const pending = createPendingOrders(createApi({ baseUrl: BASE, fetch: backend.fetch }));
    await pending.load();
    expect([...pending.heldCourses.value.keys()]).toEqual([1, 2]);
    expect(pending.newest.value?.order_no).toBe(NO);
    expect(pending.open.value).toHaveLength(1);
  });
});

describe("coming back from the cashier", () => {
  test("its cancel link (no order number) leads to the order this tab sent there", async () => {
    const shop = testShop(fakeBackend().on("GET", "/api/v1/orders", () => json(200, { items: [], count: 0 })));
    shop.payment.remember(NO, "alipay");
    const router = createAppRouter(shop, createMemoryHistory());
    await router.push("/orders?payment=invalid_signature");
    expect(router.currentRoute.value.fullPath).toBe(`/orders/${NO}?payment=left`);
    // Spent: a later visit to the list stays on the list.
    await router.push("/orders?payment=invalid_signature");
    expect(router.currentRoute.value.fullPath).toBe("/orders?payment=invalid_signature");
  });

  test("without a note in this tab, it leads to the newest unpaid order", async () => {
    const shop = testShop(fakeBackend().on("GET", "/api/v1/orders", () => json(200, { items: [pendingOrder()], count: 1 })));
    const router = createAppRouter(shop, createMemoryHistory());
    await router.push("/orders?payment=error");
    expect(router.currentRoute.value.fullPath).toBe(`/orders/${NO}?payment=left`);
  });

  test("Back: the order page says it is not paid, and offers to pay and to cancel", async () => {
    const backend = fakeBackend()
      .on("GET", `/api/v1/orders/${NO}`, () => json(200, pendingOrder()))
      .on("GET", "/api/v1/orders", () => json(200, { items: [pendingOrder()], count: 1 }));
    const { wrapper } = await mountPage(OrderDetailView, testShop(backend), `/orders/${NO}?payment=left`);
    expect(wrapper.get('[data-test="payment-not-paid"]').text()).toContain("This order is not paid yet.");
    expect(wrapper.find('[data-test="payment-waiting"]').exists()).toBe(false);
    expect(wrapper.get('[data-test="order-bar"]').text()).toContain("Pay now");
    expect(wrapper.find('[data-test="order-cancel"]').exists()).toBe(true);
  });

  test("paying sends the buyer to the cashier from the order's page, noting the order in this tab", async () => {
    const navigate = vi.fn();
    const backend = fakeBackend()
      .on("GET", `/api/v1/orders/${NO}`, () => json(200, pendingOrder()))
      .on("POST", `/api/v1/orders/${NO}/pay`, () => json(200, { pay_url: "http://pay.test/cashier" }));
    const shop = testShop(backend, navigate);
    const { wrapper } = await mountPage(OrderDetailView, shop, `/orders/${NO}`);
    await wrapper.get('[data-test="order-pay"]').trigger("click");
    await vi.waitFor(() => expect(navigate).toHaveBeenCalledWith("http://pay.test/cashier"));
    expect(shop.payment.state.leavingFor).toBe(NO);
    expect(shop.payment.takeRemembered()).toBe(NO);
  });
});

describe("the 待支付 banner", () => {
  async function mountBanner(path: string, navigate = vi.fn()) {
    const backend = fakeBackend()
      .on("GET", "/api/v1/orders", () => json(200, { items: [pendingOrder()], count: 1 }))
      .on("POST", `/api/v1/orders/${NO}/pay`, () => json(200, { pay_url: "http://pay.test/cashier" }));
    const shop = testShop(backend, navigate);
    await shop.pending.load();
    const router = createAppRouter(shop, createMemoryHistory());
    await router.push(path);
    const wrapper = mount(PendingOrderBanner, { attachTo: document.body, global: { plugins: [ElementPlus, router, i18n], provide: { [ShopKey as symbol]: shop } } });
    await flushPromises();
    return { wrapper, router, navigate };
  }

  test("shows the amount and the countdown, and 继续支付 goes straight to the cashier", async () => {
    const { wrapper, navigate } = await mountBanner("/");
    expect(wrapper.text()).toContain("You have an unpaid order of ¥378.00");
    expect(wrapper.get('[data-test="countdown"]').text()).toMatch(/^\d\d:\d\d left to pay$/);
    await wrapper.get('[data-test="pending-pay"]').trigger("click");
    await vi.waitFor(() => expect(navigate).toHaveBeenCalledWith("http://pay.test/cashier"));
  });

  test("is not repeated on that order's own page", async () => {
    const { wrapper } = await mountBanner(`/orders/${NO}`);
    expect(wrapper.find('[data-test="pending-banner"]').exists()).toBe(false);
  });
});

describe("the cart", () => {
  test("marks a course held by an unpaid order, links to it, and does not offer a checkout it would refuse", async () => {
    const backend = fakeBackend()
      .on("GET", "/api/v1/cart", () => json(200, cart([cartItem(1, "10.00"), cartItem(5, "20.00")], "30.00")))
      .on("GET", "/api/v1/orders", () => json(200, { items: [pendingOrder()], count: 1 }));
    const { wrapper } = await mountPage(CartView, testShop(backend), "/cart");
    await settle();
    const held = wrapper.get('[data-test="cart-item-1"]');
    expect(held.get('[data-test="item-held"]').text()).toBe("In an unpaid order");
    expect(held.get('[data-test="item-held-order"]').attributes("href")).toBe(`/orders/${NO}`);
    expect(wrapper.find('[data-test="cart-item-5"] [data-test="item-held"]').exists()).toBe(false);
    expect(wrapper.get('[data-test="cart-held-notice"]').text()).toContain("1 selected course is in an unpaid order");
    expect(wrapper.get('[data-test="go-checkout"]').attributes("disabled")).toBeDefined();
  });

  test("offline, a tapped checkbox goes back to what the server has", async () => {
    const backend = fakeBackend()
      .on("GET", "/api/v1/cart", () => json(200, cart([cartItem(1, "10.00")], "10.00")))
      .on("GET", "/api/v1/orders", () => json(200, { items: [], count: 0 }))
      .on("PATCH", "/api/v1/cart/items/1", () => Promise.reject(new TypeError("Failed to fetch")));
    const { wrapper } = await mountPage(CartView, testShop(backend), "/cart");
    const box = () => wrapper.get('[data-test="cart-item-1"] input[type="checkbox"]').element as HTMLInputElement;
    await wrapper.get('[data-test="cart-item-1"] input[type="checkbox"]').setValue(false);
    await settle();
    expect(box().checked).toBe(true);
    expect(wrapper.get('[data-test="cart-total"]').text()).toBe("¥10.00");
  });
});

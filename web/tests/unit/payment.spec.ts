// Paying with Alipay or WeChat Pay, on a computer or a phone: the channel the device gets, the
// provider offered first, the WeChat Pay QR code that turns into "paid" by itself, switching
// method on a pending order, and a provider the server does not offer.
import { afterEach, describe, expect, test, vi } from "vitest";
import { createApi, type Schemas } from "@/api/client";
import { channelFor, createPayment, PHONE_POINTER_QUERY, pointerIsFinger } from "@/stores/payment";
import CheckoutView from "@/views/CheckoutView.vue";
import OrderDetailView from "@/views/OrderDetailView.vue";
import { qrImageUrl } from "@/wechatQr";
import { order, preview } from "./fixtures";
import { BASE, envelope, fakeBackend, json, loggedInStorage, mountPage, settle, testShop, type FakeBackend } from "./fakeApi";

afterEach(() => {
  document.body.innerHTML = "";
  vi.unstubAllGlobals();
});

type Attempt = Schemas["PaymentAttemptOut"];
const NO = "20261125100000123456";
const PAY = `/api/v1/orders/${NO}/pay`;
const CODE_URL = "weixin://wxpay/bizpayurl?pr=abc123";
const inTenMinutes = () => new Date(Date.now() + 10 * 60_000).toISOString();
const attempt = (provider: Attempt["provider"], channel: Attempt["channel"], status: Attempt["status"] = "open", minute = 1): Attempt => ({
  provider,
  channel,
  status,
  amount: "378.00",
  created_at: `2026-11-25T10:0${minute}:00Z`,
  paid_at: status === "paid" ? `2026-11-25T10:0${minute}:30Z` : null,
});
const pendingOrder = (overrides: Partial<Schemas["OrderOut"]> = {}) => order({ expires_at: inTenMinutes(), ...overrides });
const paidOrder = () => order({ status: "paid", paid_at: new Date().toISOString(), payment_attempts: [attempt("wechat", "native", "paid")] });
const checked = (wrapper: { get(selector: string): { element: Element } }, provider: string) =>
  (wrapper.get(`[data-test="pay-${provider}"] input`).element as HTMLInputElement).checked;

describe("the channel follows the device", () => {
  test("a finger (coarse pointer) pays in the phone browser, a mouse or trackpad on the computer", () => {
    expect([channelFor("alipay", true), channelFor("wechat", true)]).toEqual(["wap", "h5"]);
    expect([channelFor("alipay", false), channelFor("wechat", false)]).toEqual(["page", "native"]);
  });

  test("the device is told by the pointer media query", () => {
    vi.stubGlobal("matchMedia", (query: string) => ({ matches: query === PHONE_POINTER_QUERY }));
    expect(pointerIsFinger()).toBe(true);
    vi.stubGlobal("matchMedia", () => ({ matches: false }));
    expect(pointerIsFinger()).toBe(false);
  });

  test("the API is asked for that provider and channel", async () => {
    const backend = fakeBackend().on("POST", PAY, () => json(200, { provider: "wechat", channel: "h5", h5_url: "http://pay.test/h5" }));
    const payment = createPayment(createApi({ baseUrl: BASE, fetch: backend.fetch }), null, () => true);
    expect((await payment.start(NO, "wechat")).h5_url).toBe("http://pay.test/h5");
    expect(backend.calls("POST", PAY)[0].body).toEqual({ provider: "wechat", channel: "h5" });
  });
});

describe("the provider offered first", () => {
  const payment = () => createPayment(createApi({ baseUrl: BASE, fetch: fakeBackend().fetch }), null, () => false);

  test("is the latest open attempt's, else the latest attempt's, else the checkout choice", () => {
    const p = payment();
    expect(p.preferredProvider({ pay_type: "wechat", payment_attempts: [] })).toBe("wechat");
    expect(p.preferredProvider({ pay_type: "alipay", payment_attempts: [attempt("alipay", "page", "open", 1), attempt("wechat", "native", "open", 2)] })).toBe("wechat");
    expect(p.preferredProvider({ pay_type: "wechat", payment_attempts: [attempt("alipay", "page", "open", 3), attempt("wechat", "native", "closed", 4)] })).toBe("alipay");
    expect(p.preferredProvider({ pay_type: "alipay", payment_attempts: [attempt("wechat", "native", "closed", 2)] })).toBe("wechat");
  });

  test("is never one the server said it does not offer", () => {
    const p = payment();
    p.markUnavailable("wechat");
    expect(p.preferredProvider({ pay_type: "wechat", payment_attempts: [attempt("wechat", "native")] })).toBe("alipay");
    p.markUnavailable("bitcoin");
    expect(p.state.unavailable).toEqual(["wechat"]);
  });
});

describe("WeChat Pay on a computer", () => {
  function qrBackend(...afterFirst: (() => Response)[]): FakeBackend {
    const backend = fakeBackend().on("GET", `/api/v1/orders/${NO}`, () => json(200, pendingOrder({ pay_type: "wechat" })));
    for (const answer of afterFirst) backend.on("GET", `/api/v1/orders/${NO}`, answer);
    return backend.on("POST", PAY, () => json(200, { provider: "wechat", channel: "native", code_url: CODE_URL }));
  }

  test("shows the QR code of the code_url with the amount, polls every 2 s and turns paid by itself, then stops", async () => {
    const backend = qrBackend(() => json(200, paidOrder()));
    const { wrapper } = await mountPage(OrderDetailView, testShop(backend), `/orders/${NO}?pay=wechat`);
    expect(backend.calls("POST", PAY)[0].body).toEqual({ provider: "wechat", channel: "native" });
    await vi.waitFor(() => expect(wrapper.find('[data-test="wechat-qr"]').exists()).toBe(true));
    const qr = wrapper.get('[data-test="wechat-qr"]');
    expect(qr.attributes("src")).toBe(await qrImageUrl(CODE_URL));
    expect(qr.attributes("alt")).toBe("WeChat Pay QR code: scan it with WeChat to pay ¥378.00");
    expect(wrapper.get('[data-test="qr-amount"]').text()).toBe("¥378.00");
    expect(wrapper.get('[data-test="wechat-qr-panel"]').text()).toMatch(/\d\d:\d\d left to pay/);
    expect(checked(wrapper, "wechat")).toBe(true);
    // The code is the next step: no second "pay" button beside it.
    expect(wrapper.find('[data-test="order-pay"]').exists()).toBe(false);

    await vi.waitFor(
      async () => {
        await settle();
        expect(wrapper.find('[data-test="paid-banner"]').exists()).toBe(true);
      },
      { timeout: 4000, interval: 200 },
    );
    expect(wrapper.find('[data-test="wechat-qr-panel"]').exists()).toBe(false);
    expect(wrapper.get('[data-test="order-announcement"]').text()).toBe("Payment received: the order is paid.");
    expect(wrapper.get('[data-test="attempt-wechat-native"]').attributes("data-status")).toBe("paid");
    const gets = backend.calls("GET", `/api/v1/orders/${NO}`).length;
    expect(gets).toBe(2);
    await new Promise((r) => setTimeout(r, 2300));
    expect(backend.calls("GET", `/api/v1/orders/${NO}`)).toHaveLength(gets);
  });

  test("stops polling when the page is left", async () => {
    const backend = qrBackend();
    const { wrapper } = await mountPage(OrderDetailView, testShop(backend), `/orders/${NO}?pay=wechat`);
    await vi.waitFor(() => expect(wrapper.find('[data-test="wechat-qr"]').exists()).toBe(true));
    wrapper.unmount();
    await new Promise((r) => setTimeout(r, 2300));
    expect(backend.calls("GET", `/api/v1/orders/${NO}`)).toHaveLength(1);
  });

  test("a pending order can switch: Alipay chosen first, then WeChat's QR code, then Alipay's cashier", async () => {
    const navigate = vi.fn();
    const backend = fakeBackend()
      .on("GET", `/api/v1/orders/${NO}`, () => json(200, pendingOrder({ payment_attempts: [attempt("alipay", "page")] })))
      .on("POST", PAY, () => json(200, { provider: "wechat", channel: "native", code_url: CODE_URL }))
      .on("POST", PAY, () => json(200, { provider: "alipay", channel: "page", pay_url: "http://pay.test/cashier" }));
    const { wrapper, router } = await mountPage(OrderDetailView, testShop(backend, navigate), `/orders/${NO}?payment=left`);
    expect(checked(wrapper, "alipay")).toBe(true);
    expect(wrapper.get('[data-test="order-pay"]').attributes("aria-label")).toBe("Pay now with Alipay");
    expect(wrapper.get('[data-test="attempt-alipay-page"]').text()).toContain("Awaiting payment");

    await wrapper.get('[data-test="pay-wechat"] input').setValue(true);
    expect(wrapper.get('[data-test="order-pay"]').attributes("aria-label")).toBe("Pay now with WeChat Pay");
    await wrapper.get('[data-test="order-pay"]').trigger("click");
    await settle();
    expect(backend.calls("POST", PAY)[0].body).toEqual({ provider: "wechat", channel: "native" });
    expect(router.currentRoute.value.fullPath).toBe(`/orders/${NO}?pay=wechat`);
    await vi.waitFor(() => expect(wrapper.find('[data-test="wechat-qr"]').exists()).toBe(true));
    expect(navigate).not.toHaveBeenCalled();

    await wrapper.get('[data-test="pay-alipay"] input').setValue(true);
    expect(wrapper.find('[data-test="wechat-qr-panel"]').exists()).toBe(false);
    await wrapper.get('[data-test="order-pay"]').trigger("click");
    await vi.waitFor(() => expect(navigate).toHaveBeenCalledWith("http://pay.test/cashier"));
    expect(backend.calls("POST", PAY)[1].body).toEqual({ provider: "alipay", channel: "page" });
    expect(router.currentRoute.value.fullPath).toBe(`/orders/${NO}?payment=left`);
  });

  test("a server without WeChat Pay: said once, greyed out, Alipay chosen", async () => {
    const backend = fakeBackend()
      .on("GET", `/api/v1/orders/${NO}`, () => json(200, pendingOrder({ pay_type: "wechat" })))
      .on("POST", PAY, () => envelope(422, "payment_provider_unavailable", "wechat is not offered by this shop.", { provider: "wechat" }));
    const shop = testShop(backend);
    const { wrapper } = await mountPage(OrderDetailView, shop, `/orders/${NO}?pay=wechat`);
    await settle();
    expect(shop.payment.offered("wechat")).toBe(false);
    expect(document.body.textContent).toContain("This shop does not offer that way of paying.");
    expect(wrapper.find('[data-test="wechat-qr-panel"]').exists()).toBe(false);
    expect(checked(wrapper, "alipay")).toBe(true);
    expect((wrapper.get('[data-test="pay-wechat"] input').element as HTMLInputElement).disabled).toBe(true);
    expect(wrapper.get('[data-test="pay-wechat"]').text()).toContain("Not offered by this shop");
    expect(wrapper.find('[data-test="order-pay"]').exists()).toBe(true);
  });
});

describe("on a phone", () => {
  test("WeChat Pay opens its H5 page, the order's page left behind for Back", async () => {
    const navigate = vi.fn();
    const backend = fakeBackend()
      .on("GET", `/api/v1/orders/${NO}`, () => json(200, pendingOrder()))
      .on("POST", PAY, () => json(200, { provider: "wechat", channel: "h5", h5_url: "http://pay.test/h5?prepay_id=1" }));
    const shop = testShop(backend, navigate, loggedInStorage(), () => true);
    const { wrapper, router } = await mountPage(OrderDetailView, shop, `/orders/${NO}`);
    expect(wrapper.get('[data-test="pay-wechat"]').text()).toContain("Pay in WeChat");
    await wrapper.get('[data-test="pay-wechat"] input').setValue(true);
    await wrapper.get('[data-test="order-pay"]').trigger("click");
    await vi.waitFor(() => expect(navigate).toHaveBeenCalledWith("http://pay.test/h5?prepay_id=1"));
    expect(backend.calls("POST", PAY)[0].body).toEqual({ provider: "wechat", channel: "h5" });
    expect(router.currentRoute.value.fullPath).toBe(`/orders/${NO}?payment=left`);
    expect(wrapper.get('[data-test="payment-leaving"]').text()).toContain("Taking you to WeChat Pay…");
  });

  test("a QR code asked for in the address is not shown on a phone", async () => {
    const backend = fakeBackend().on("GET", `/api/v1/orders/${NO}`, () => json(200, pendingOrder()));
    const { wrapper } = await mountPage(OrderDetailView, testShop(backend, undefined, loggedInStorage(), () => true), `/orders/${NO}?pay=wechat`);
    expect(wrapper.find('[data-test="wechat-qr-panel"]').exists()).toBe(false);
    expect(backend.calls("POST", PAY)).toHaveLength(0);
    expect(checked(wrapper, "wechat")).toBe(true);
  });

  test("back from WeChat Pay H5 (?payment=returned), the page confirms, then shows the order paid", async () => {
    const backend = fakeBackend()
      .on("GET", `/api/v1/orders/${NO}`, () => json(200, pendingOrder()))
      .on("GET", `/api/v1/orders/${NO}`, () => json(200, paidOrder()));
    const { wrapper } = await mountPage(OrderDetailView, testShop(backend, undefined, loggedInStorage(), () => true), `/orders/${NO}?payment=returned`);
    expect(wrapper.find('[data-test="payment-waiting"]').text()).toContain("Confirming your payment…");
    await vi.waitFor(
      async () => {
        await settle();
        expect(wrapper.find('[data-test="paid-banner"]').exists()).toBe(true);
      },
      { timeout: 4000, interval: 200 },
    );
  });
});

describe("checkout", () => {
  function backendFor(payAnswer: Record<string, string> = { provider: "wechat", channel: "native", code_url: CODE_URL }) {
    return fakeBackend()
      .on("GET", "/api/v1/checkout/preview", () => json(200, preview()))
      .on("GET", "/api/v1/cart", () => json(200, { items: [], count: 0, selected_count: 0, selected_total: "0.00" }))
      .on("POST", PAY, () => json(200, payAnswer));
  }

  test("offers both; WeChat Pay becomes the order's pay_type and, on a computer, its QR code shows on the order page", async () => {
    const navigate = vi.fn();
    const backend = backendFor().on("POST", "/api/v1/orders", () => json(201, pendingOrder({ pay_type: "wechat" })));
    const { wrapper, router } = await mountPage(CheckoutView, testShop(backend, navigate), "/checkout");
    expect(checked(wrapper, "alipay")).toBe(true);
    expect(wrapper.get('[data-test="checkout-pay-methods"]').text()).toContain("Scan a QR code with WeChat on your phone");
    await wrapper.get('[data-test="pay-wechat"] input').setValue(true);
    await wrapper.get('[data-test="submit-order"]').trigger("click");
    await settle();
    expect(backend.calls("POST", "/api/v1/orders")[0].body).toMatchObject({ pay_type: "wechat" });
    expect(backend.calls("POST", PAY)[0].body).toEqual({ provider: "wechat", channel: "native" });
    await vi.waitFor(() => expect(router.currentRoute.value.fullPath).toBe(`/orders/${NO}?pay=wechat`), { timeout: 5000 });
    expect(navigate).not.toHaveBeenCalled();
  });

  test("after a lost answer, switching method replays the same order (same pay_type) and pays with the new one", async () => {
    const backend = backendFor()
      .on("POST", "/api/v1/orders", () => Promise.reject(new TypeError("Failed to fetch")))
      .on("POST", "/api/v1/orders", () => json(201, pendingOrder(), { "Idempotent-Replayed": "true" }));
    const { wrapper } = await mountPage(CheckoutView, testShop(backend), "/checkout");
    await wrapper.get('[data-test="submit-order"]').trigger("click");
    await settle();
    expect(wrapper.get('[data-test="submit-error"]').text()).toContain("Submitting again is safe");
    await wrapper.get('[data-test="pay-wechat"] input').setValue(true);
    await wrapper.get('[data-test="submit-order"]').trigger("click");
    await settle();
    const placed = backend.calls("POST", "/api/v1/orders");
    expect(placed.map((r) => (r.body as { pay_type: string }).pay_type)).toEqual(["alipay", "alipay"]);
    expect(placed[0].headers.get("Idempotency-Key")).toBe(placed[1].headers.get("Idempotency-Key"));
    expect(backend.calls("POST", PAY)[0].body).toEqual({ provider: "wechat", channel: "native" });
  });

  test("a provider the server does not offer is greyed out and the other chosen; the next tap places the order", async () => {
    const navigate = vi.fn();
    const backend = backendFor({ provider: "alipay", channel: "wap", pay_url: "http://pay.test/wap" })
      .on("POST", "/api/v1/orders", () => envelope(422, "payment_provider_unavailable", "wechat is not offered by this shop.", { provider: "wechat" }))
      .on("POST", "/api/v1/orders", () => json(201, pendingOrder()));
    const { wrapper } = await mountPage(CheckoutView, testShop(backend, navigate, loggedInStorage(), () => true), "/checkout");
    await wrapper.get('[data-test="pay-wechat"] input').setValue(true);
    await wrapper.get('[data-test="submit-order"]').trigger("click");
    await settle();
    expect(wrapper.get('[data-test="submit-error"]').text()).toContain("This shop does not offer that way of paying.");
    expect(checked(wrapper, "alipay")).toBe(true);
    expect((wrapper.get('[data-test="pay-wechat"] input').element as HTMLInputElement).disabled).toBe(true);

    await wrapper.get('[data-test="submit-order"]').trigger("click");
    await vi.waitFor(() => expect(navigate).toHaveBeenCalledWith("http://pay.test/wap"), { timeout: 5000 });
    expect(backend.calls("POST", "/api/v1/orders").map((r) => (r.body as { pay_type: string }).pay_type)).toEqual(["wechat", "alipay"]);
    expect(backend.calls("POST", PAY).at(-1)!.body).toEqual({ provider: "alipay", channel: "wap" });
  });
});

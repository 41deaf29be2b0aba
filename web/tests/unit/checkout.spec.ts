import { afterEach, describe, expect, test, vi } from "vitest";
import CheckoutView from "@/views/CheckoutView.vue";
import { createApi } from "@/api/client";
import { createCheckoutStore } from "@/stores/checkout";
import { cart, cartItem, order, preview } from "./fixtures";
import { BASE, envelope, fakeBackend, json, mountPage, settle, testShop, type FakeBackend } from "./fakeApi";

afterEach(() => {
  document.body.innerHTML = "";
});

function storeWith(backend: FakeBackend, keys = ["key-1", "key-2"]) {
  const newKey = vi.fn(() => keys.shift() ?? "key-x");
  return { store: createCheckoutStore(createApi({ baseUrl: BASE, fetch: backend.fetch }), newKey), newKey };
}

const lostResponse = () => Promise.reject(new TypeError("Failed to fetch"));

describe("checkout store: one Idempotency-Key per visit", () => {
  test("a double submit sends one request, with the key made when the page opened", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const backend = fakeBackend().on("POST", "/api/v1/orders", async () => {
      await gate;
      return json(201, order());
    });
    const { store, newKey } = storeWith(backend);

    const first = store.submit();
    const second = store.submit();
    release();
    expect(await first).toEqual(await second);

    const posts = backend.calls("POST", "/api/v1/orders");
    expect(posts).toHaveLength(1);
    expect(posts[0].headers.get("Idempotency-Key")).toBe("key-1");
    expect(posts[0].body).toEqual({ pay_type: "alipay", user_coupon_id: null, points: 0 });
    expect(newKey).toHaveBeenCalledTimes(1);
    // Once there is an order, submitting again asks nothing more.
    await store.submit();
    expect(backend.calls("POST", "/api/v1/orders")).toHaveLength(1);
  });

  test("every retry after a failure reuses the same key, even with a changed choice", async () => {
    const backend = fakeBackend()
      .on("POST", "/api/v1/orders", lostResponse)
      .on("POST", "/api/v1/orders", () => envelope(422, "insufficient_points", "You have 10 points, not 500."))
      .on("POST", "/api/v1/orders", () => json(201, order(), { "Idempotent-Replayed": "true" }));
    const { store } = storeWith(backend);

    await expect(store.submit()).rejects.toMatchObject({ code: "network_error" });
    expect(store.retryable(store.state.submitError)).toBe(true);
    store.state.wanted.points = 500;
    await expect(store.submit()).rejects.toMatchObject({ code: "insufficient_points", message: "You have 10 points, not 500." });
    expect(store.retryable(store.state.submitError)).toBe(false);
    store.state.wanted.points = 0;
    await store.submit();

    const keys = backend.calls("POST", "/api/v1/orders").map((r) => r.headers.get("Idempotency-Key"));
    expect(keys).toEqual(["key-1", "key-1", "key-1"]);
    expect(store.state.order?.order_no).toBe(order().order_no);
    expect(store.state.submitError).toBeNull();
  });

  test("a new visit (a new store) makes a new key", () => {
    const backend = fakeBackend();
    expect(storeWith(backend, ["a"]).store.state.idempotencyKey).toBe("a");
    expect(storeWith(backend, ["b"]).store.state.idempotencyKey).toBe("b");
    expect(createCheckoutStore(createApi({ baseUrl: BASE, fetch: backend.fetch })).state.idempotencyKey).toMatch(
      /^[0-9a-f-]{36}$/,
    );
  });
});

describe("checkout store: the price breakdown", () => {
  test("sends the coupon and points, and keeps the answer as strings", async () => {
    const backend = fakeBackend().on("GET", "/api/v1/checkout/preview", () =>
      json(200, preview({ coupon_discount: "20.00", points_discount: "100.00", pay_amount: "378.00" })),
    );
    const { store } = storeWith(backend);
    await store.selectCoupon(7);
    await store.setPoints(1000);
    const last = backend.calls("GET", "/api/v1/checkout/preview").at(-1)!;
    expect(Object.fromEntries(last.query)).toEqual({ user_coupon_id: "7", points: "1000" });
    expect(store.state.preview?.pay_amount).toBe("378.00");
  });

  test("points above the new maximum are lowered to it, with a note", async () => {
    const backend = fakeBackend()
      .on("GET", "/api/v1/checkout/preview", () =>
        envelope(422, "points_exceed_limit", "At most 3780 points can be used on this order.", { max_points: 3780, requested: 4980 }),
      )
      .on("GET", "/api/v1/checkout/preview", () => json(200, preview({ max_points: 3780 })));
    const { store } = storeWith(backend);
    store.state.wanted.points = 4980;
    await store.selectCoupon(7);
    expect(store.state.wanted.points).toBe(3780);
    expect(store.state.error).toBeNull();
    expect(store.state.notice).toEqual({ key: "checkout.pointsLowered", params: { points: 3780 } });
    expect(backend.calls("GET", "/api/v1/checkout/preview").at(-1)!.query.get("points")).toBe("3780");
  });

  test("a refusal it cannot fix is kept for the page to show", async () => {
    const backend = fakeBackend().on("GET", "/api/v1/checkout/preview", () =>
      envelope(422, "cart_empty", "Select at least one course in your cart."),
    );
    const { store } = storeWith(backend);
    await store.refresh();
    expect(store.state.error).toMatchObject({ status: 422, code: "cart_empty", message: "Select at least one course in your cart." });
  });
});

describe("checkout page", () => {
  function backendFor() {
    return fakeBackend()
      .on("GET", "/api/v1/checkout/preview", () => json(200, preview()))
      .on("GET", "/api/v1/checkout/preview", () =>
        json(200, preview({ coupon_discount: "20.00", pay_amount: "478.00", max_points: 4780 })),
      )
      .on("GET", "/api/v1/cart", () => json(200, { items: [], count: 0, selected_count: 0, selected_total: "0.00" }))
      .on("POST", "/api/v1/orders/20261125100000123456/pay", () => json(200, { pay_url: "http://pay.test/gateway?x=1" }));
  }

  test("shows the breakdown from the API and the usable coupons, points and rate", async () => {
    const backend = backendFor();
    const { wrapper } = await mountPage(CheckoutView, testShop(backend), "/checkout");
    expect(wrapper.get('[data-test="subtotal"]').text()).toBe("¥498.00");
    expect(wrapper.get('[data-test="pay-amount"]').text()).toBe("¥498.00");
    expect(wrapper.findAll('[data-test="checkout-line"]')).toHaveLength(2);
    expect(wrapper.text()).toContain("Coupons (1)");
    expect(wrapper.text()).toContain("Points (you have 5000)");
    expect(wrapper.get('[data-test="points-rate"]').text()).toContain("10 points = ¥1.00");

    await wrapper.get('[data-test="coupon-7"] input').trigger("click");
    await settle();
    expect(backend.calls("GET", "/api/v1/checkout/preview").at(-1)!.query.get("user_coupon_id")).toBe("7");
    expect(wrapper.get('[data-test="coupon-discount"]').text()).toBe("−¥20.00");
    expect(wrapper.get('[data-test="pay-amount"]').text()).toBe("¥478.00");
    expect((wrapper.get('[data-test="coupon-7"] input').element as HTMLInputElement).checked).toBe(true);
  });

  test("a double click places one order and opens the gateway once", async () => {
    const navigate = vi.fn();
    const backend = backendFor().on("POST", "/api/v1/orders", () => json(201, order()));
    const { wrapper, router } = await mountPage(CheckoutView, testShop(backend, navigate), "/checkout");
    const button = wrapper.get('[data-test="submit-order"]');
    await Promise.all([button.trigger("click"), button.trigger("click")]);
    await settle();
    expect(backend.calls("POST", "/api/v1/orders")).toHaveLength(1);
    expect(backend.calls("POST", "/api/v1/orders/20261125100000123456/pay")).toHaveLength(1);
    // Before leaving, this history entry becomes the order's page (a lazily loaded route): Back
    // from the cashier lands there.
    await vi.waitFor(() => expect(navigate).toHaveBeenCalledTimes(1), { timeout: 5000 });
    expect(navigate).toHaveBeenCalledWith("http://pay.test/gateway?x=1");
    expect(router.currentRoute.value.fullPath).toBe("/orders/20261125100000123456?payment=left");
  });

  test("an error is shown as its message; the retry carries the same key", async () => {
    const navigate = vi.fn();
    const backend = backendFor()
      .on("POST", "/api/v1/orders", () => envelope(422, "coupon_invalid", "That coupon has expired."))
      .on("POST", "/api/v1/orders", () => json(201, order()));
    const { wrapper } = await mountPage(CheckoutView, testShop(backend, navigate), "/checkout");

    await wrapper.get('[data-test="submit-order"]').trigger("click");
    await settle();
    expect(wrapper.get('[data-test="submit-error"]').text()).toContain("That coupon does not apply to this order.");
    expect(navigate).not.toHaveBeenCalled();
    expect(wrapper.get('[data-test="submit-order"]').attributes("disabled")).toBeUndefined();

    await wrapper.get('[data-test="submit-order"]').trigger("click");
    await settle();
    const keys = backend.calls("POST", "/api/v1/orders").map((r) => r.headers.get("Idempotency-Key"));
    expect(keys).toHaveLength(2);
    expect(keys[0]).toBe(keys[1]);
    await vi.waitFor(() => expect(navigate).toHaveBeenCalledTimes(1), { timeout: 5000 });
  });

  test("an empty selection says so instead of showing a blank page", async () => {
    const backend = fakeBackend().on("GET", "/api/v1/checkout/preview", () =>
      envelope(422, "cart_empty", "Select at least one course in your cart."),
    );
    const { wrapper } = await mountPage(CheckoutView, testShop(backend), "/checkout");
    expect(wrapper.get('[data-test="checkout-error"]').text()).toContain("Select at least one course in your cart.");
  });

  test("a paid-in-full order (0.00) goes to its page, not to the gateway", async () => {
    const navigate = vi.fn();
    const backend = backendFor().on("POST", "/api/v1/orders", () => json(201, order({ status: "paid", pay_amount: "0.00" })));
    const { wrapper, router } = await mountPage(CheckoutView, testShop(backend, navigate), "/checkout");
    await wrapper.get('[data-test="submit-order"]').trigger("click");
    await settle();
    // The order page is a lazily loaded route: wait for the navigation to land.
    await vi.waitFor(() => expect(router.currentRoute.value.fullPath).toBe("/orders/20261125100000123456"), { timeout: 5000 });
    expect(navigate).not.toHaveBeenCalled();
  });
});

describe("checkout: no control shows a choice the total ignores", () => {
  const offline = () => Promise.reject(new TypeError("Failed to fetch"));

  test("a failed pricing keeps the breakdown and the controls on the last priced choice; Retry prices the wanted one", async () => {
    const backend = fakeBackend()
      .on("GET", "/api/v1/checkout/preview", () => json(200, preview()))
      .on("GET", "/api/v1/checkout/preview", offline)
      .on("GET", "/api/v1/checkout/preview", () => json(200, preview({ coupon_discount: "20.00", pay_amount: "478.00" })));
    const { wrapper } = await mountPage(CheckoutView, testShop(backend), "/checkout");
    const radio = () => wrapper.get('[data-test="coupon-7"] input').element as HTMLInputElement;

    await wrapper.get('[data-test="coupon-7"] input').trigger("click");
    await settle();
    expect(radio().checked).toBe(false);
    expect(wrapper.get('[data-test="coupon-7"]').classes()).not.toContain("coupon--selected");
    expect((wrapper.get('[data-test="coupon-none"] input').element as HTMLInputElement).checked).toBe(true);
    expect(wrapper.get('[data-test="pay-amount"]').text()).toBe("¥498.00");
    expect(wrapper.get('[data-test="preview-error"]').text()).toContain("Could not reach the server.");
    expect(wrapper.findAll('[role="alert"]')).toHaveLength(1);
    expect(wrapper.get('[data-test="submit-order"]').attributes("disabled")).toBeDefined();

    await wrapper.get('[data-test="preview-retry"]').trigger("click");
    await settle();
    expect(backend.calls("GET", "/api/v1/checkout/preview").at(-1)!.query.get("user_coupon_id")).toBe("7");
    expect(radio().checked).toBe(true);
    expect(wrapper.get('[data-test="pay-amount"]').text()).toBe("¥478.00");
    expect(wrapper.find('[data-test="checkout-problem"]').exists()).toBe(false);
    expect(wrapper.get('[data-test="submit-order"]').attributes("disabled")).toBeUndefined();
  });

  test("points the server did not price go back to the priced ones", async () => {
    const backend = fakeBackend()
      .on("GET", "/api/v1/checkout/preview", () => json(200, preview()))
      .on("GET", "/api/v1/checkout/preview", offline);
    const { store } = storeWith(backend);
    await store.refresh();
    await store.setPoints(500);
    expect(store.state.wanted.points).toBe(500);
    expect(store.state.applied?.points).toBe(0);
    expect(store.settled.value).toBe(false);
  });

  test("a course held by an unpaid order, or owned, is named, with a way to the order", async () => {
    const backend = fakeBackend()
      .on("GET", "/api/v1/checkout/preview", () =>
        envelope(422, "already_purchased", "Some selected courses are already yours.", { enrolled_course_ids: [2], pending: { "1": "2026112510000042" } }),
      )
      .on("GET", "/api/v1/cart", () => json(200, cart([cartItem(1, "199.00"), cartItem(2, "299.00")], "498.00")))
      .on("GET", "/api/v1/orders", () => json(200, { items: [], count: 0 }));
    const shop = testShop(backend);
    await shop.cart.load();
    const { wrapper } = await mountPage(CheckoutView, shop, "/checkout");
    const refusal = wrapper.get('[data-test="checkout-error"]');
    expect(refusal.text()).toContain("“Course 1” is in order 2026112510000042, awaiting payment.");
    expect(refusal.get("a").attributes("href")).toBe("/orders/2026112510000042");
    expect(refusal.text()).toContain("“Course 2” is already yours");
    expect(shop.ownership.owns(2)).toBe(true);
  });
});

describe("checkout: a lost answer that did place the order, then a changed choice", () => {
  test.each([
    ["cart_empty", "the order took the cart", () => envelope(422, "cart_empty", "Select at least one course in your cart.")],
    [
      "already_purchased",
      "the courses, put back in the cart elsewhere, are held by that order",
      () => envelope(409, "already_purchased", "Held.", { enrolled_course_ids: [], pending: { "1": "20261125100000123456" } }),
    ],
  ])("the breakdown is refused (%s: %s): the lost request is sent again and its order shown", async (_code, _why, refusal) => {
    const backend = fakeBackend()
      .on("GET", "/api/v1/checkout/preview", () => json(200, preview()))
      .on("GET", "/api/v1/checkout/preview", refusal)
      .on("POST", "/api/v1/orders", lostResponse)
      .on("POST", "/api/v1/orders", () => json(201, order({ pay_amount: "498.00", coupon_discount: "0.00" }), { "Idempotent-Replayed": "true" }));
    const { store } = storeWith(backend);
    await store.refresh();
    await expect(store.submit()).rejects.toMatchObject({ code: "network_error" });

    await store.selectCoupon(7);
    const posts = backend.calls("POST", "/api/v1/orders");
    expect(posts).toHaveLength(2);
    // The same request as the lost one: same key, same body, not the new coupon.
    expect(posts[1].headers.get("Idempotency-Key")).toBe("key-1");
    expect(posts[1].body).toEqual(posts[0].body);
    expect(posts[1].body).toEqual({ pay_type: "alipay", user_coupon_id: null, points: 0 });
    expect(store.state.order?.pay_amount).toBe("498.00");
    expect(store.state.placedBefore).toBe(true);
  });

  test("the changed choice submitted with the same key is refused as reused: the order it names is shown", async () => {
    const backend = fakeBackend()
      .on("POST", "/api/v1/orders", lostResponse)
      .on("POST", "/api/v1/orders", () =>
        envelope(422, "idempotency_key_reused", "This Idempotency-Key was used for a different request.", { order_no: "20261125100000123456" }),
      )
      .on("GET", "/api/v1/orders/20261125100000123456", () => json(200, order()));
    const { store } = storeWith(backend);
    await expect(store.submit()).rejects.toMatchObject({ code: "network_error" });
    store.state.wanted.points = 500;
    const shown = await store.submit();
    expect(shown.order_no).toBe("20261125100000123456");
    expect(store.state.placedBefore).toBe(true);
    expect(store.state.submitError).toBeNull();
    expect(backend.calls("POST", "/api/v1/orders").map((r) => r.headers.get("Idempotency-Key"))).toEqual(["key-1", "key-1"]);
  });

  test("no lost answer: an emptied cart is only an emptied cart", async () => {
    const backend = fakeBackend().on("GET", "/api/v1/checkout/preview", () => envelope(422, "cart_empty", "Select at least one course in your cart."));
    const { store } = storeWith(backend);
    await store.refresh();
    expect(backend.calls("POST", "/api/v1/orders")).toHaveLength(0);
    expect(store.state.order).toBeNull();
    expect(store.state.error?.code).toBe("cart_empty");
  });

  test("the lost request had not gone through: its refusal stands and nothing is shown as placed", async () => {
    const backend = fakeBackend()
      .on("GET", "/api/v1/checkout/preview", () => json(200, preview()))
      .on("GET", "/api/v1/checkout/preview", () => envelope(422, "cart_empty", "Select at least one course in your cart."))
      .on("POST", "/api/v1/orders", lostResponse)
      .on("POST", "/api/v1/orders", () => envelope(422, "cart_empty", "Select at least one course in your cart."));
    const { store } = storeWith(backend);
    await store.refresh();
    await expect(store.submit()).rejects.toMatchObject({ code: "network_error" });
    await store.selectCoupon(7);
    expect(backend.calls("POST", "/api/v1/orders")).toHaveLength(2);
    expect(store.state.order).toBeNull();
    expect(store.state.placedBefore).toBe(false);
    expect(store.state.error?.code).toBe("cart_empty");
    expect(store.state.submitError?.code).toBe("network_error");
  });

  test("the page goes to that order, saying it was placed before, and does not pay from here", async () => {
    const navigate = vi.fn();
    const backend = fakeBackend()
      .on("GET", "/api/v1/checkout/preview", () => json(200, preview()))
      .on("GET", "/api/v1/checkout/preview", () => envelope(422, "cart_empty", "Select at least one course in your cart."))
      .on("GET", "/api/v1/cart", () => json(200, cart([], "0.00")))
      .on("GET", "/api/v1/orders", () => json(200, { items: [], count: 0 }))
      .on("POST", "/api/v1/orders", lostResponse)
      .on("POST", "/api/v1/orders", () => json(201, order(), { "Idempotent-Replayed": "true" }));
    const { wrapper, router } = await mountPage(CheckoutView, testShop(backend, navigate), "/checkout");
    await wrapper.get('[data-test="submit-order"]').trigger("click");
    await settle();
    expect(wrapper.get('[data-test="submit-error"]').text()).toContain("Submitting again is safe");

    await wrapper.get('[data-test="coupon-7"] input').trigger("click");
    await vi.waitFor(() => expect(router.currentRoute.value.fullPath).toBe("/orders/20261125100000123456?placed=before"), { timeout: 5000 });
    expect(navigate).not.toHaveBeenCalled();
    expect(backend.calls("POST", "/api/v1/orders/20261125100000123456/pay")).toHaveLength(0);
  });
});

import { afterEach, describe, expect, test } from "vitest";
import CartView from "@/views/CartView.vue";
import AppHeader from "@/components/AppHeader.vue";
import { createApi } from "@/api/client";
import { createCartStore } from "@/stores/cart";
import { cart, cartItem } from "./fixtures";
import { BASE, envelope, fakeBackend, json, mountPage, settle, testShop } from "./fakeApi";

afterEach(() => {
  document.body.innerHTML = "";
});

describe("cart store", () => {
  test("selection changes go to the server and the totals come back from it", async () => {
    const backend = fakeBackend()
      .on("GET", "/api/v1/cart", () => json(200, cart([cartItem(1, "199.00"), cartItem(2, "299.00")], "498.00")))
      .on("GET", "/api/v1/cart", () => json(200, cart([cartItem(1, "199.00"), cartItem(2, "299.00", false)], "199.00")))
      .on("PATCH", "/api/v1/cart/items/2", () => json(200, cartItem(2, "299.00", false)));
    const store = createCartStore(createApi({ baseUrl: BASE, fetch: backend.fetch }));

    await store.load();
    expect(store.allSelected.value).toBe(true);
    await store.setSelected(store.state.cart!.items[1], false);

    expect(backend.calls("PATCH", "/api/v1/cart/items/2")[0].body).toEqual({ selected: false });
    expect(store.state.cart!.selected_total).toBe("199.00");
    expect(store.allSelected.value).toBe(false);
    expect(store.someSelected.value).toBe(true);
    expect(store.count.value).toBe(2);
  });

  test("select all is one PUT whose answer is the new cart", async () => {
    const backend = fakeBackend().on("PUT", "/api/v1/cart/selection", () =>
      json(200, cart([cartItem(1, "9.90"), cartItem(2, "49.90")], "59.80")),
    );
    const store = createCartStore(createApi({ baseUrl: BASE, fetch: backend.fetch }));
    await store.selectAll(true);
    expect(backend.calls("PUT", "/api/v1/cart/selection")[0].body).toEqual({ selected: true });
    expect(store.state.cart!.selected_total).toBe("59.80");
    expect(backend.requests).toHaveLength(1);
  });
});

describe("cart page", () => {
  test("shows the API's total as given, never a float sum of the prices", async () => {
    // 0.10 + 0.20 is 0.30000000000000004 in floating point; the page must show the server's "0.30".
    const backend = fakeBackend().on("GET", "/api/v1/cart", () => json(200, cart([cartItem(1, "0.10"), cartItem(2, "0.20")], "0.30")));
    const { wrapper } = await mountPage(CartView, testShop(backend), "/cart");
    expect(wrapper.get('[data-test="cart-total"]').text()).toBe("¥0.30");
    expect(wrapper.get('[data-test="cart-summary"]').text()).toBe("2 courses, 2 selected");
    expect(wrapper.text()).toContain("¥0.10");
  });

  test("unticking one line, then select all, then remove: each from the server", async () => {
    const backend = fakeBackend()
      .on("GET", "/api/v1/cart", () => json(200, cart([cartItem(1, "199.00"), cartItem(2, "299.00")], "498.00")))
      .on("GET", "/api/v1/cart", () => json(200, cart([cartItem(1, "199.00"), cartItem(2, "299.00", false)], "199.00")))
      .on("GET", "/api/v1/cart", () => json(200, cart([cartItem(1, "199.00")], "199.00")))
      .on("PATCH", "/api/v1/cart/items/2", () => json(200, cartItem(2, "299.00", false)))
      .on("PUT", "/api/v1/cart/selection", () => json(200, cart([cartItem(1, "199.00"), cartItem(2, "299.00")], "498.00")))
      .on("DELETE", "/api/v1/cart/items/2", () => json(204, null));
    const { wrapper } = await mountPage(CartView, testShop(backend), "/cart");

    await wrapper.get('[data-test="cart-item-2"] input[type="checkbox"]').setValue(false);
    await settle();
    expect(backend.calls("PATCH", "/api/v1/cart/items/2")[0].body).toEqual({ selected: false });
    expect(wrapper.get('[data-test="cart-total"]').text()).toBe("¥199.00");
    expect(wrapper.get('[data-test="cart-summary"]').text()).toBe("2 courses, 1 selected");

    await wrapper.get('[data-test="select-all"] input[type="checkbox"]').setValue(true);
    await settle();
    expect(backend.calls("PUT", "/api/v1/cart/selection")[0].body).toEqual({ selected: true });
    expect(wrapper.get('[data-test="cart-total"]').text()).toBe("¥498.00");

    await wrapper.get('[data-test="cart-item-2"] [data-test="item-remove"]').trigger("click");
    await settle();
    expect(backend.calls("DELETE", "/api/v1/cart/items/2")).toHaveLength(1);
    expect(wrapper.find('[data-test="cart-item-2"]').exists()).toBe(false);
    expect(wrapper.get('[data-test="cart-summary"]').text()).toBe("1 course, 1 selected");
  });

  test("checkout is disabled with nothing selected", async () => {
    const backend = fakeBackend().on("GET", "/api/v1/cart", () => json(200, cart([cartItem(1, "199.00", false)], "0.00")));
    const { wrapper } = await mountPage(CartView, testShop(backend), "/cart");
    expect(wrapper.get('[data-test="go-checkout"]').attributes("disabled")).toBeDefined();
  });

  test("a failed load shows the API's message, and a retry recovers", async () => {
    const backend = fakeBackend()
      .on("GET", "/api/v1/cart", () => envelope(503, "service_unavailable", "The database is taking a nap."))
      .on("GET", "/api/v1/cart", () => json(200, cart([], "0.00")));
    const { wrapper } = await mountPage(CartView, testShop(backend), "/cart");
    expect(wrapper.get('[data-test="cart-error"]').text()).toContain("The shop is briefly unavailable.");
    await wrapper.get('[data-test="cart-error"] button').trigger("click");
    await settle();
    expect(wrapper.text()).toContain("Your cart is empty.");
  });

  test("a refused change shows the API's message and the server's state", async () => {
    const backend = fakeBackend()
      .on("GET", "/api/v1/cart", () => json(200, cart([cartItem(1, "199.00")], "199.00")))
      .on("DELETE", "/api/v1/cart/items/1", () => envelope(404, "cart_item_not_found", "That item is no longer in your cart."));
    const { wrapper } = await mountPage(CartView, testShop(backend), "/cart");
    await wrapper.get('[data-test="item-remove"]').trigger("click");
    await settle();
    expect(document.body.textContent).toContain("That course is no longer in your cart.");
    expect(backend.calls("GET", "/api/v1/cart")).toHaveLength(2);
  });

  test("the header badge counts the cart's lines", async () => {
    const backend = fakeBackend().on("GET", "/api/v1/cart", () => json(200, cart([cartItem(1, "1.00"), cartItem(2, "2.00")], "3.00")));
    const shop = testShop(backend);
    await shop.cart.load();
    const { wrapper } = await mountPage(AppHeader, shop, "/");
    expect(wrapper.get('[data-test="cart-badge"]').text()).toBe("2");
    expect(wrapper.get('[data-test="nav-cart"] .visually-hidden').text()).toBe(", 2 courses");
  });
});

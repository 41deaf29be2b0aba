// Sign-up and log-in carry on with what the visitor was doing; the course page says what they can do.
import { afterEach, describe, expect, test, vi } from "vitest";
import CourseView from "@/views/CourseView.vue";
import LoginView from "@/views/LoginView.vue";
import RegisterView from "@/views/RegisterView.vue";
import { cart, cartItem, course, order } from "./fixtures";
import { envelope, fakeBackend, json, memoryStorage, mountPage, settle, testShop } from "./fakeApi";

afterEach(() => {
  document.body.innerHTML = "";
});

const pair = { access: "access-1", refresh: "refresh-1", token_type: "Bearer", expires_in: 900 };
const noOrders = () => json(200, { items: [], count: 0 });

describe("sign-up", () => {
  function backend() {
    return fakeBackend()
      .on("POST", "/api/v1/auth/register", () => json(201, { id: 9, username: "carol" }))
      .on("POST", "/api/v1/auth/token", () => json(200, pair))
      .on("GET", "/api/v1/courses/3", () => json(200, course(3, "159.00", "Vue 3 for shop pages")))
      .on("POST", "/api/v1/cart/items", () => json(201, cartItem(3, "159.00")))
      .on("GET", "/api/v1/cart", () => json(200, cart([cartItem(3, "159.00")], "159.00")))
      .on("GET", "/api/v1/orders", noOrders);
  }

  test("logs the new buyer in, adds the course they tried to add, and returns them", async () => {
    const api = backend();
    const shop = testShop(api, undefined, memoryStorage());
    const { wrapper, router } = await mountPage(RegisterView, shop, "/register?next=/courses/3&add=3");
    await wrapper.get('input[data-test="username"]').setValue("carol");
    await wrapper.get('input[data-test="password"]').setValue("a-long-pass-phrase");
    await wrapper.get('input[data-test="password-repeat"]').setValue("a-long-pass-phrase");
    await wrapper.get("form").trigger("submit");
    await vi.waitFor(() => expect(router.currentRoute.value.fullPath).toBe("/courses/3"), { timeout: 5000 });
    expect(api.calls("POST", "/api/v1/auth/register")[0].body).toEqual({ username: "carol", password: "a-long-pass-phrase" });
    expect(api.calls("POST", "/api/v1/cart/items")[0].body).toEqual({ course_id: 3 });
    expect(shop.session.username.value).toBe("carol");
  });

  test("two different passwords are caught before asking the server", async () => {
    const api = backend();
    const { wrapper } = await mountPage(RegisterView, testShop(api, undefined, memoryStorage()), "/register");
    await wrapper.get('input[data-test="username"]').setValue("carol");
    await wrapper.get('input[data-test="password"]').setValue("a-long-pass-phrase");
    await wrapper.get('input[data-test="password-repeat"]').setValue("another");
    await wrapper.get("form").trigger("submit");
    await settle();
    expect(wrapper.get('[data-test="register-error"]').text()).toBe("The two passwords differ.");
    expect(api.calls("POST", "/api/v1/auth/register")).toHaveLength(0);
  });

  test("a taken username is said with the name", async () => {
    const api = fakeBackend().on("POST", "/api/v1/auth/register", () => envelope(409, "username_taken", "The username 'alice' is taken."));
    const { wrapper } = await mountPage(RegisterView, testShop(api, undefined, memoryStorage()), "/register");
    await wrapper.get('input[data-test="username"]').setValue("alice");
    await wrapper.get('input[data-test="password"]').setValue("a-long-pass-phrase");
    await wrapper.get('input[data-test="password-repeat"]').setValue("a-long-pass-phrase");
    await wrapper.get("form").trigger("submit");
    await settle();
    expect(wrapper.get('[data-test="register-error"]').text()).toBe("The username “alice” is taken.");
  });

  test("the login page links to sign-up, keeping where to go and what to add", async () => {
    const { wrapper } = await mountPage(LoginView, testShop(fakeBackend(), undefined, memoryStorage()), "/login?next=/&add=3");
    expect(wrapper.get('[data-test="register-link"]').attributes("href")).toBe("/register?next=/&add=3");
    expect(wrapper.text()).toContain("Once you are logged in, the course you picked goes into your cart.");
  });
});

describe("the course page", () => {
  test("shows the course and adds it to the cart", async () => {
    const api = fakeBackend()
      .on("GET", "/api/v1/courses/2", () => json(200, course(2, "299.00", "Django in depth")))
      .on("POST", "/api/v1/cart/items", () => json(201, cartItem(2, "299.00")))
      .on("GET", "/api/v1/cart", () => json(200, cart([cartItem(2, "299.00")], "299.00")));
    const { wrapper } = await mountPage(CourseView, testShop(api), "/courses/2");
    expect(wrapper.get('[data-test="course-name"]').text()).toBe("Django in depth");
    expect(wrapper.get('[data-test="course-price"]').text()).toBe("¥299.00");
    expect(wrapper.get('[data-test="course-description"]').text()).toBe("About Django in depth");
    await wrapper.get('[data-test="add-to-cart"]').trigger("click");
    await settle();
    expect(wrapper.find('[data-test="in-cart"]').exists()).toBe(true);
  });

  test("says 已购买 once the API says the course is owned", async () => {
    const api = fakeBackend()
      .on("GET", "/api/v1/courses/2", () => json(200, course(2, "299.00")))
      .on("POST", "/api/v1/cart/items", () => envelope(409, "already_purchased", "You already own 'Course 2'."));
    const { wrapper } = await mountPage(CourseView, testShop(api), "/courses/2");
    await wrapper.get('[data-test="add-to-cart"]').trigger("click");
    await settle();
    expect(wrapper.get('[data-test="owned"]').text()).toBe("Purchased");
    expect(wrapper.find('[data-test="add-to-cart"]').exists()).toBe(false);
  });

  test("a future `owned` field on the course is honoured as it is", async () => {
    const api = fakeBackend().on("GET", "/api/v1/courses/2", () => json(200, { ...course(2, "299.00"), owned: true }));
    const { wrapper } = await mountPage(CourseView, testShop(api), "/courses/2");
    expect(wrapper.find('[data-test="owned"]').exists()).toBe(true);
  });

  test("a course held by an unpaid order links to that order instead of offering it again", async () => {
    const api = fakeBackend()
      .on("GET", "/api/v1/courses/2", () => json(200, course(2, "299.00")))
      .on("GET", "/api/v1/orders", () =>
        json(200, { items: [order({ expires_at: new Date(Date.now() + 600_000).toISOString(), lines: [{ id: 1, course_id: 2, name: "Course 2", picture_url: "/x.svg", price: "299.00", refundable_amount: "299.00", refund_status: null }] })], count: 1 }),
      );
    const shop = testShop(api);
    await shop.pending.load();
    const { wrapper } = await mountPage(CourseView, shop, "/courses/2");
    expect(wrapper.get('[data-test="held-by-order"]').attributes("href")).toBe("/orders/20261125100000123456");
  });

  test("logged out, adding goes by the login page and names the course to add", async () => {
    const api = fakeBackend().on("GET", "/api/v1/courses/2", () => json(200, course(2, "299.00")));
    const { wrapper, router } = await mountPage(CourseView, testShop(api, undefined, memoryStorage()), "/courses/2");
    await wrapper.get('[data-test="add-to-cart"]').trigger("click");
    await vi.waitFor(() => expect(router.currentRoute.value.fullPath).toBe("/login?next=/courses/2&add=2"), { timeout: 5000 });
  });

  test("a missing course says so", async () => {
    const api = fakeBackend().on("GET", "/api/v1/courses/99", () => envelope(404, "course_not_found", "Course 99 does not exist."));
    const { wrapper } = await mountPage(CourseView, testShop(api), "/courses/99");
    expect(wrapper.get("h1").text()).toBe("We could not find this course.");
  });
});

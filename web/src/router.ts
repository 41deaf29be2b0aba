import { shallowRef } from "vue";
import { createRouter, createWebHistory, type RouteLocationNormalized, type RouterHistory } from "vue-router";
import { i18n } from "@/i18n";
import { isChunkLoadError } from "@/i18n/errors";
import type { Shop } from "@/shop";

declare module "vue-router" {
  interface RouteMeta {
    /** the page needs a logged-in user; others are sent to /login?next=... */
    auth?: boolean;
    /** message key of the page's title */
    titleKey?: string;
  }
}

/** Where a navigation was going when its page's code could not be loaded (offline, redeployed). */
export const unloadedPage = shallowRef<string | null>(null);

export function pageTitle(route: RouteLocationNormalized): string {
  const { t } = i18n.global;
  return route.meta.titleKey ? `${t(route.meta.titleKey)} · ${t("app.titleSuffix")}` : t("app.titleSuffix");
}

export function createAppRouter(shop: Shop, history: RouterHistory = createWebHistory()) {
  const router = createRouter({
    history,
    routes: [
      { path: "/", name: "courses", component: () => import("@/views/CoursesView.vue"), meta: { titleKey: "titles.courses" } },
      {
        path: "/courses/:courseId(\\d+)",
        name: "course",
        component: () => import("@/views/CourseView.vue"),
        props: (route) => ({ courseId: Number(route.params.courseId) }),
        meta: { titleKey: "titles.course" },
      },
      { path: "/login", name: "login", component: () => import("@/views/LoginView.vue"), meta: { titleKey: "titles.login" } },
      { path: "/register", name: "register", component: () => import("@/views/RegisterView.vue"), meta: { titleKey: "titles.register" } },
      { path: "/cart", name: "cart", component: () => import("@/views/CartView.vue"), meta: { auth: true, titleKey: "titles.cart" } },
      {
        path: "/checkout",
        name: "checkout",
        component: () => import("@/views/CheckoutView.vue"),
        meta: { auth: true, titleKey: "titles.checkout" },
      },
      { path: "/orders", name: "orders", component: () => import("@/views/OrdersView.vue"), meta: { auth: true, titleKey: "titles.orders" } },
      {
        path: "/orders/:orderNo",
        name: "order",
        component: () => import("@/views/OrderDetailView.vue"),
        props: true,
        meta: { auth: true, titleKey: "titles.order" },
      },
      {
        path: "/me/courses",
        name: "my-courses",
        component: () => import("@/views/MyCoursesView.vue"),
        meta: { auth: true, titleKey: "titles.myCourses" },
      },
      { path: "/coupons", name: "coupons", component: () => import("@/views/CouponsView.vue"), meta: { auth: true, titleKey: "titles.coupons" } },
      { path: "/:pathMatch(.*)*", name: "not-found", component: () => import("@/views/NotFoundView.vue"), meta: { titleKey: "titles.notFound" } },
    ],
    scrollBehavior: () => ({ top: 0 }),
  });

  router.beforeEach(async (to) => {
    if (to.meta.auth && !shop.session.isLoggedIn.value) {
      return { name: "login", query: { next: to.fullPath } };
    }
    const hint = typeof to.query.payment === "string" ? to.query.payment : "";
    // The cashier's cancel link returns through the API without an order number
    // (/orders?payment=...): go to the order this tab sent to the cashier, else the newest unpaid one.
    if (to.name === "orders" && hint) {
      const orderNo = shop.payment.takeRemembered() ?? (await shop.pending.load().catch(() => []))[0]?.order_no;
      if (orderNo) return { name: "order", params: { orderNo }, query: { payment: "left" }, replace: true };
    }
    // A return that names its order: the tab's note of where it went is spent.
    if (to.name === "order" && hint && hint !== "left") shop.payment.takeRemembered();
    if (shop.session.isLoggedIn.value) shop.pending.refresh();
    return true;
  });
  router.afterEach((to, _from, failure) => {
    if (!failure) unloadedPage.value = null;
    if (typeof document !== "undefined") document.title = pageTitle(to);
  });
  router.onError((error, to) => {
    if (isChunkLoadError(error)) unloadedPage.value = to.fullPath;
  });
  return router;
}

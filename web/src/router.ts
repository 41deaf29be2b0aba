import { createRouter, createWebHistory, type RouterHistory } from "vue-router";
import type { Shop } from "@/shop";

declare module "vue-router" {
  interface RouteMeta {
    /** the page needs a logged-in user; others are sent to /login?next=... */
    auth?: boolean;
    title?: string;
  }
}

export function createAppRouter(shop: Shop, history: RouterHistory = createWebHistory()) {
  const router = createRouter({
    history,
    routes: [
      { path: "/", name: "courses", component: () => import("@/views/CoursesView.vue"), meta: { title: "Courses" } },
      { path: "/login", name: "login", component: () => import("@/views/LoginView.vue"), meta: { title: "Log in" } },
      { path: "/cart", name: "cart", component: () => import("@/views/CartView.vue"), meta: { auth: true, title: "My cart" } },
      {
        path: "/checkout",
        name: "checkout",
        component: () => import("@/views/CheckoutView.vue"),
        meta: { auth: true, title: "Checkout" },
      },
      { path: "/orders", name: "orders", component: () => import("@/views/OrdersView.vue"), meta: { auth: true, title: "My orders" } },
      {
        path: "/orders/:orderNo",
        name: "order",
        component: () => import("@/views/OrderDetailView.vue"),
        props: true,
        meta: { auth: true, title: "Order" },
      },
      { path: "/coupons", name: "coupons", component: () => import("@/views/CouponsView.vue"), meta: { auth: true, title: "Coupons" } },
      { path: "/:pathMatch(.*)*", name: "not-found", component: () => import("@/views/NotFoundView.vue"), meta: { title: "Not found" } },
    ],
    scrollBehavior: () => ({ top: 0 }),
  });

  router.beforeEach((to) => {
    if (to.meta.auth && !shop.session.isLoggedIn.value) {
      return { name: "login", query: { next: to.fullPath } };
    }
    return true;
  });
  router.afterEach((to) => {
    if (typeof document !== "undefined") document.title = to.meta.title ? `${to.meta.title} · Course shop` : "Course shop";
  });
  return router;
}

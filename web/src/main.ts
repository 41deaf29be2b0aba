import { createApp } from "vue";
import App from "@/App.vue";
import { errorMessage } from "@/api/client";
import { createAppRouter } from "@/router";
import { createShop, ShopKey } from "@/shop";
import { SESSION_KEY } from "@/stores/session";
import "@/styles.css";
import { toastError } from "@/ui/feedback";

const shop = createShop({ apiOrigin: import.meta.env.VITE_API_ORIGIN ?? "", storage: window.localStorage });
const router = createAppRouter(shop);
const app = createApp(App);

// Whatever goes wrong, the user reads a message instead of a blank page.
const showError = (error: unknown) => toastError(errorMessage(error));
app.config.errorHandler = (error) => {
  console.error(error);
  showError(error);
};
window.addEventListener("unhandledrejection", (event) => showError(event.reason));
router.onError((error) => {
  console.error(error);
  showError(error);
});

// A 401 (or a refused refresh) ends the session: log in again, then come back here.
shop.session.onExpired(async () => {
  shop.cart.clear();
  await router.isReady();
  const here = router.currentRoute.value;
  if (here.name !== "login") await router.push({ name: "login", query: { next: here.fullPath } });
});
// Another tab logged in or out.
window.addEventListener("storage", (event) => {
  if (event.key !== SESSION_KEY) return;
  shop.session.reload();
  if (shop.session.isLoggedIn.value) shop.cart.load().catch(() => undefined);
  else shop.cart.clear();
});
if (shop.session.isLoggedIn.value) shop.cart.load().catch(() => undefined);

app.use(router);
app.provide(ShopKey, shop);
app.mount("#app");

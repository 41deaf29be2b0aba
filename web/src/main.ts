import { createApp } from "vue";
import App from "@/App.vue";
import { i18n, initialLocale, setLocale } from "@/i18n";
import { errorText, isChunkLoadError } from "@/i18n/errors";
import { createAppRouter } from "@/router";
import { createShop, ShopKey } from "@/shop";
import { SESSION_KEY } from "@/stores/session";
import "@/styles.css";
import { toastError } from "@/ui/feedback";

const shop = createShop({
  apiOrigin: import.meta.env.VITE_API_ORIGIN ?? "",
  storage: window.localStorage,
  sessionStorage: window.sessionStorage,
});
const router = createAppRouter(shop);
const app = createApp(App);

// Whatever goes wrong unhandled, the user reads a message instead of a blank page. A page whose
// code did not load gets its own page (App.vue), not a toast as well.
const showError = (error: unknown) => {
  if (!isChunkLoadError(error)) toastError(errorText(error));
};
app.config.errorHandler = (error) => {
  console.error(error);
  showError(error);
};
window.addEventListener("unhandledrejection", (event) => showError(event.reason));

// A 401 (or a refused refresh) ends the session: log in again, then come back here.
shop.session.onExpired(async () => {
  shop.clearUserData();
  await router.isReady();
  const here = router.currentRoute.value;
  if (here.name !== "login") await router.push({ name: "login", query: { next: here.fullPath } });
});
// Another tab logged in or out.
window.addEventListener("storage", (event) => {
  if (event.key !== SESSION_KEY) return;
  shop.session.reload();
  if (shop.session.isLoggedIn.value) shop.loadUserData();
  else shop.clearUserData();
});
// Back from the cashier may restore this page from the back/forward cache, frozen as it was when
// it left: load it afresh so the order's state and message are current.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) window.location.reload();
});
shop.loadUserData();

app.use(i18n);
app.use(router);
app.provide(ShopKey, shop);
// 简体中文 is bundled; English (when chosen earlier) loads before the first paint.
setLocale(initialLocale(shop.storage), shop.storage)
  .catch(() => setLocale("zh-CN"))
  .finally(() => app.mount("#app"));

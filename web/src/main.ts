import ElementPlus, { ElMessage } from "element-plus";
import "element-plus/dist/index.css";
import { createApp } from "vue";
import App from "@/App.vue";
import { errorMessage } from "@/api/client";
import { createAppRouter } from "@/router";
import { createShop, ShopKey } from "@/shop";
import { SESSION_KEY } from "@/stores/session";
import "@/styles.css";

const shop = createShop({ apiOrigin: import.meta.env.VITE_API_ORIGIN ?? "", storage: window.localStorage });
const router = createAppRouter(shop);
const app = createApp(App);

// Whatever goes wrong, the user reads a message instead of a blank page.
const showError = (error: unknown) => ElMessage.error({ message: errorMessage(error), grouping: true });
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

app.use(ElementPlus);
app.use(router);
app.provide(ShopKey, shop);
app.mount("#app");

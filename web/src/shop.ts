// The app's services, made once in main.ts and handed to components by provide/inject (tests
// build their own around a fake fetch).
import { inject, type InjectionKey } from "vue";
import { apiAssetUrl, authMiddleware, createApi, type ApiClient } from "@/api/client";
import { createCartStore, type CartStore } from "@/stores/cart";
import { createOwnership, type Ownership } from "@/stores/ownership";
import { createPayment, type Payment } from "@/stores/payment";
import { createPendingOrders, type PendingOrders } from "@/stores/pending";
import { createSession, type Session } from "@/stores/session";

export interface Shop {
  api: ApiClient;
  session: Session;
  cart: CartStore;
  pending: PendingOrders;
  ownership: Ownership;
  payment: Payment;
  /** localStorage (the session, the language), or null in tests */
  storage: Storage | null;
  /** a picture URL from the API, made loadable from this page */
  assetUrl(url: string): string;
  /** leaves the app for another address (the payment gateway) */
  navigate(url: string): void;
  /** everything that belongs to the logged-in user, loaded again (after logging in) or dropped */
  loadUserData(): void;
  clearUserData(): void;
}

export interface ShopOptions {
  apiOrigin?: string;
  fetch?: (request: Request) => Promise<Response>;
  storage?: Storage | null;
  sessionStorage?: Storage | null;
  navigate?: (url: string) => void;
  now?: () => number;
  /** whether the buyer pays in a phone browser (default: a coarse primary pointer, see stores/payment.ts) */
  onPhone?: () => boolean;
}

export function createShop(options: ShopOptions = {}): Shop {
  const apiOrigin = (options.apiOrigin ?? "").replace(/\/+$/, "");
  const api = createApi({ baseUrl: apiOrigin, fetch: options.fetch });
  const storage = options.storage ?? null;
  const session = createSession(api, storage, options.now);
  api.use(authMiddleware(session.tokens));
  const cart = createCartStore(api);
  const pending = createPendingOrders(api);
  const ownership = createOwnership();
  return {
    api,
    session,
    cart,
    pending,
    ownership,
    payment: createPayment(api, options.sessionStorage ?? null, options.onPhone),
    storage,
    assetUrl: (url) => apiAssetUrl(url, apiOrigin),
    navigate: options.navigate ?? ((url) => window.location.assign(url)),
    loadUserData() {
      if (!session.isLoggedIn.value) return;
      cart.load().catch(() => undefined);
      pending.load().catch(() => undefined);
    },
    clearUserData() {
      cart.clear();
      pending.clear();
      ownership.clear();
    },
  };
}

export const ShopKey: InjectionKey<Shop> = Symbol("shop");

export function useShop(): Shop {
  const shop = inject(ShopKey);
  if (!shop) throw new Error("useShop() outside the app: provide ShopKey");
  return shop;
}

// The app's services, made once in main.ts and handed to components by provide/inject (tests
// build their own around a fake fetch).
import { inject, type InjectionKey } from "vue";
import { apiAssetUrl, authMiddleware, createApi, type ApiClient } from "@/api/client";
import { createCartStore, type CartStore } from "@/stores/cart";
import { createSession, type Session } from "@/stores/session";

export interface Shop {
  api: ApiClient;
  session: Session;
  cart: CartStore;
  /** a picture URL from the API, made loadable from this page */
  assetUrl(url: string): string;
  /** leaves the app for another address (the payment gateway) */
  navigate(url: string): void;
}

export interface ShopOptions {
  apiOrigin?: string;
  fetch?: (request: Request) => Promise<Response>;
  storage?: Storage | null;
  navigate?: (url: string) => void;
  now?: () => number;
}

export function createShop(options: ShopOptions = {}): Shop {
  const apiOrigin = (options.apiOrigin ?? "").replace(/\/+$/, "");
  const api = createApi({ baseUrl: apiOrigin, fetch: options.fetch });
  const session = createSession(api, options.storage ?? null, options.now);
  api.use(authMiddleware(session.tokens));
  return {
    api,
    session,
    cart: createCartStore(api),
    assetUrl: (url) => apiAssetUrl(url, apiOrigin),
    navigate: options.navigate ?? ((url) => window.location.assign(url)),
  };
}

export const ShopKey: InjectionKey<Shop> = Symbol("shop");

export function useShop(): Shop {
  const shop = inject(ShopKey);
  if (!shop) throw new Error("useShop() outside the app: provide ShopKey");
  return shop;
}

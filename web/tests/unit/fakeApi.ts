// A stand-in backend for unit tests: routes (method, path) to handlers, records every request.
import ElementPlus from "element-plus";
import { mount, flushPromises } from "@vue/test-utils";
import { createMemoryHistory } from "vue-router";
import type { Component } from "vue";
import type { ErrorCode } from "@/api/client";
import { i18n } from "@/i18n";
import { createAppRouter } from "@/router";
import { createShop, ShopKey, type Shop } from "@/shop";
import { SESSION_KEY } from "@/stores/session";

export const BASE = "http://api.test";

export interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Headers;
  body: unknown;
}

type Reply = Response | Promise<Response>;
type Handler = (request: Recorded) => Reply;

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(status === 204 ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

export function envelope(status: number, code: ErrorCode, message: string, details: unknown = null): Response {
  return json(status, { code, message, details });
}

export function fakeBackend() {
  const routes = new Map<string, Handler[]>();
  const requests: Recorded[] = [];

  async function fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const text = await request.text();
    const recorded: Recorded = {
      method: request.method,
      path: url.pathname,
      query: url.searchParams,
      headers: request.headers,
      body: text ? JSON.parse(text) : undefined,
    };
    requests.push(recorded);
    const key = `${request.method} ${url.pathname}`;
    const queue = routes.get(key);
    if (!queue || queue.length === 0) return envelope(404, "not_found", `no fake for ${key}`);
    // The last handler stays for every later call; earlier ones answer once each, in order.
    const handler = queue.length > 1 ? queue.shift()! : queue[0];
    return handler(recorded);
  }

  return {
    fetch,
    requests,
    /** Answers `method path` with `handler`; several calls queue one-shot answers before the last. */
    on(method: string, path: string, handler: Handler) {
      const key = `${method} ${path}`;
      routes.set(key, [...(routes.get(key) ?? []), handler]);
      return this;
    },
    calls(method: string, path: string) {
      return requests.filter((r) => r.method === method && r.path === path);
    },
  };
}

export type FakeBackend = ReturnType<typeof fakeBackend>;

export function memoryStorage(initial: Record<string, string> = {}): Storage {
  const data = new Map(Object.entries(initial));
  return {
    get length() {
      return data.size;
    },
    clear: () => data.clear(),
    getItem: (key) => data.get(key) ?? null,
    key: (index) => [...data.keys()][index] ?? null,
    removeItem: (key) => void data.delete(key),
    setItem: (key, value) => void data.set(key, String(value)),
  };
}

export function loggedInStorage(expiresInMs = 10 * 60_000): Storage {
  return memoryStorage({
    [SESSION_KEY]: JSON.stringify({ username: "alice", access: "access-1", refresh: "refresh-1", expiresAt: Date.now() + expiresInMs }),
  });
}

/** A shop on the fake backend; on a computer unless `onPhone` says otherwise. */
export function testShop(
  backend: FakeBackend,
  navigate: (url: string) => void = () => undefined,
  storage: Storage = loggedInStorage(),
  onPhone: () => boolean = () => false,
): Shop {
  return createShop({ apiOrigin: BASE, fetch: backend.fetch, storage, sessionStorage: memoryStorage(), navigate, onPhone });
}

/** Mounts a page the way the app does: Element Plus, the router (in memory), the shop. */
export async function mountPage(component: Component, shop: Shop, path: string) {
  const router = createAppRouter(shop, createMemoryHistory());
  await router.push(path);
  await router.isReady();
  const wrapper = mount(component, {
    attachTo: document.body,
    props: router.currentRoute.value.params as Record<string, unknown>,
    global: { plugins: [ElementPlus, router, i18n], provide: { [ShopKey as symbol]: shop } },
  });
  await settle();
  return { wrapper, router };
}

/** Lets fetches, promise chains and re-renders finish. */
export async function settle() {
  for (let i = 0; i < 5; i++) {
    await flushPromises();
    await new Promise((r) => setTimeout(r, 0));
  }
}

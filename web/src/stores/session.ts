// Who is logged in: the token pair in localStorage, the access token refreshed (POST
// /auth/refresh) shortly before it expires, and the session dropped when the server says 401.
import { computed, reactive } from "vue";
import { ApiError, call, type ApiClient, type Schemas, type TokenSource } from "@/api/client";

export interface StoredSession {
  username: string;
  access: string;
  refresh: string;
  /** ms since the epoch, on this browser's clock (from expires_in, so server clock skew does not matter) */
  expiresAt: number;
}

export const SESSION_KEY = "shop.session";
/** Refresh when the access token has less than this left. */
export const REFRESH_MARGIN_MS = 60_000;

export function createSession(api: ApiClient, storage: Storage | null, now: () => number = Date.now) {
  const state = reactive({ current: read(), expired: false });
  const expiredListeners = new Set<() => void>();
  let refreshing: Promise<string | null> | null = null;

  function read(): StoredSession | null {
    try {
      const value = JSON.parse(storage?.getItem(SESSION_KEY) ?? "null") as Partial<StoredSession> | null;
      if (value && value.username && value.access && value.refresh && typeof value.expiresAt === "number") {
        return value as StoredSession;
      }
    } catch {
      /* a damaged entry is a logged-out user */
    }
    return null;
  }

  function write(session: StoredSession | null) {
    state.current = session;
    if (session) storage?.setItem(SESSION_KEY, JSON.stringify(session));
    else storage?.removeItem(SESSION_KEY);
  }

  function fromPair(username: string, pair: Schemas["TokenPairOut"]): StoredSession {
    return { username, access: pair.access, refresh: pair.refresh, expiresAt: now() + pair.expires_in * 1000 };
  }

  async function login(username: string, password: string): Promise<void> {
    const pair = await call(api.POST("/api/v1/auth/token", { body: { username, password } }));
    write(fromPair(username, pair));
    state.expired = false;
  }

  /** Forgets the session here at once, then ends it on the server (POST /auth/logout revokes
   * its refresh token's family), so a copied refresh token dies with it. A failed call changes
   * nothing here: the user is logged out either way. */
  async function logout(): Promise<void> {
    const session = state.current;
    write(null);
    if (!session) return;
    try {
      await call(api.POST("/api/v1/auth/logout", { body: { refresh: session.refresh } }));
    } catch {
      /* offline, or the session had already ended */
    }
  }

  function expire() {
    if (!state.current) return;
    write(null);
    state.expired = true;
    expiredListeners.forEach((listener) => listener());
  }

  function refresh(): Promise<string | null> {
    const session = state.current;
    if (!session) return Promise.resolve(null);
    refreshing ??= call(api.POST("/api/v1/auth/refresh", { body: { refresh: session.refresh } }))
      .then(
        (pair) => {
          if (!state.current) return null; // logged out while the refresh was on its way
          write(fromPair(session.username, pair));
          return pair.access;
        },
        (error: unknown) => {
          if (error instanceof ApiError && error.status === 401) {
            expire();
            return null;
          }
          // The refresh did not get through (network): the old token may still be good.
          if (session.expiresAt > now()) return session.access;
          throw error;
        },
      )
      .finally(() => {
        refreshing = null;
      });
    return refreshing;
  }

  const tokens: TokenSource = {
    async accessToken() {
      const session = state.current;
      if (!session) return null;
      if (session.expiresAt - now() > REFRESH_MARGIN_MS) return session.access;
      return refresh();
    },
    unauthorized: expire,
  };

  return {
    state,
    isLoggedIn: computed(() => state.current !== null),
    username: computed(() => state.current?.username ?? ""),
    login,
    logout,
    refresh,
    tokens,
    /** Another tab logged in or out: follow it. */
    reload() {
      state.current = read();
    },
    onExpired(listener: () => void) {
      expiredListeners.add(listener);
      return () => expiredListeners.delete(listener);
    },
  };
}

export type Session = ReturnType<typeof createSession>;

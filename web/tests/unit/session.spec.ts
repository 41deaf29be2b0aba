import { describe, expect, test, vi } from "vitest";
import { ApiError, call, createApi, authMiddleware } from "@/api/client";
import { createSession, SESSION_KEY } from "@/stores/session";
import { BASE, envelope, fakeBackend, json, memoryStorage } from "./fakeApi";

const pair = (n: number) => ({ access: `access-${n}`, refresh: `refresh-${n}`, token_type: "Bearer", expires_in: 900 });

function setup(backend: ReturnType<typeof fakeBackend>) {
  let now = 1_000_000;
  const storage = memoryStorage();
  const api = createApi({ baseUrl: BASE, fetch: backend.fetch });
  const session = createSession(api, storage, () => now);
  api.use(authMiddleware(session.tokens));
  return { api, session, storage, advance: (ms: number) => (now += ms) };
}

describe("session", () => {
  test("log in, send the bearer token, refresh it shortly before it expires", async () => {
    const backend = fakeBackend()
      .on("POST", "/api/v1/auth/token", () => json(200, pair(1)))
      .on("POST", "/api/v1/auth/refresh", () => json(200, pair(2)))
      .on("GET", "/api/v1/cart", () => json(200, { items: [], count: 0, selected_count: 0, selected_total: "0.00" }));
    const { api, session, storage, advance } = setup(backend);

    await session.login("alice", "pw");
    expect(backend.calls("POST", "/api/v1/auth/token")[0].headers.get("Authorization")).toBeNull();
    expect(JSON.parse(storage.getItem(SESSION_KEY)!)).toMatchObject({ username: "alice", access: "access-1" });

    await call(api.GET("/api/v1/cart"));
    expect(backend.calls("GET", "/api/v1/cart")[0].headers.get("Authorization")).toBe("Bearer access-1");

    advance(850_000); // 50 s left: inside the refresh margin
    await Promise.all([call(api.GET("/api/v1/cart")), call(api.GET("/api/v1/cart"))]);
    expect(backend.calls("POST", "/api/v1/auth/refresh")).toHaveLength(1); // one refresh for both
    expect(backend.calls("POST", "/api/v1/auth/refresh")[0].body).toEqual({ refresh: "refresh-1" });
    expect(backend.calls("GET", "/api/v1/cart").slice(1).map((r) => r.headers.get("Authorization"))).toEqual([
      "Bearer access-2",
      "Bearer access-2",
    ]);
  });

  test("a 401 ends the session and tells the app (which sends the user to log in)", async () => {
    const backend = fakeBackend()
      .on("POST", "/api/v1/auth/token", () => json(200, pair(1)))
      .on("GET", "/api/v1/orders", () => envelope(401, "not_authenticated", "A bearer access token is required."));
    const { api, session, storage } = setup(backend);
    const expired = vi.fn();
    session.onExpired(expired);
    await session.login("alice", "pw");

    await expect(call(api.GET("/api/v1/orders"))).rejects.toMatchObject({ status: 401 });
    expect(expired).toHaveBeenCalledTimes(1);
    expect(session.isLoggedIn.value).toBe(false);
    expect(session.state.expired).toBe(true);
    expect(storage.getItem(SESSION_KEY)).toBeNull();
  });

  test("a refused refresh ends the session too", async () => {
    const backend = fakeBackend()
      .on("POST", "/api/v1/auth/token", () => json(200, pair(1)))
      .on("POST", "/api/v1/auth/refresh", () => envelope(401, "invalid_token", "The token is invalid or expired."))
      .on("GET", "/api/v1/cart", () => envelope(401, "not_authenticated", "A bearer access token is required."));
    const { api, session, advance } = setup(backend);
    const expired = vi.fn();
    session.onExpired(expired);
    await session.login("alice", "pw");
    advance(900_000);
    await expect(call(api.GET("/api/v1/cart"))).rejects.toBeInstanceOf(ApiError);
    expect(backend.calls("GET", "/api/v1/cart")[0].headers.get("Authorization")).toBeNull();
    expect(expired).toHaveBeenCalledTimes(1);
  });

  test("log out forgets the session at once and ends it on the server", async () => {
    const backend = fakeBackend()
      .on("POST", "/api/v1/auth/token", () => json(200, pair(1)))
      .on("POST", "/api/v1/auth/logout", () => json(204, null));
    const { session, storage } = setup(backend);
    await session.login("alice", "pw");

    const done = session.logout();
    expect(session.isLoggedIn.value).toBe(false);
    expect(storage.getItem(SESSION_KEY)).toBeNull();
    await done;
    const [request] = backend.calls("POST", "/api/v1/auth/logout");
    expect(request.body).toEqual({ refresh: "refresh-1" });
    expect(request.headers.get("Authorization")).toBeNull();
  });

  test("log out still logs out here when the server cannot be told", async () => {
    const backend = fakeBackend()
      .on("POST", "/api/v1/auth/token", () => json(200, pair(1)))
      .on("POST", "/api/v1/auth/logout", () => Promise.reject(new TypeError("Failed to fetch")));
    const { session, storage } = setup(backend);
    const expired = vi.fn();
    session.onExpired(expired);
    await session.login("alice", "pw");

    await expect(session.logout()).resolves.toBeUndefined();
    expect(session.isLoggedIn.value).toBe(false);
    expect(storage.getItem(SESSION_KEY)).toBeNull();
    expect(expired).not.toHaveBeenCalled();
  });

  test("a refresh that lands after log-out does not log the user back in", async () => {
    let answer: (response: Response) => void = () => undefined;
    const backend = fakeBackend()
      .on("POST", "/api/v1/auth/token", () => json(200, pair(1)))
      .on("POST", "/api/v1/auth/refresh", () => new Promise<Response>((resolve) => (answer = resolve)))
      .on("POST", "/api/v1/auth/logout", () => json(204, null));
    const { session, storage } = setup(backend);
    await session.login("alice", "pw");

    const refreshed = session.refresh();
    await vi.waitFor(() => expect(backend.calls("POST", "/api/v1/auth/refresh")).toHaveLength(1));
    await session.logout();
    answer(json(200, pair(2)));
    expect(await refreshed).toBeNull();
    expect(session.isLoggedIn.value).toBe(false);
    expect(storage.getItem(SESSION_KEY)).toBeNull();
  });

  test("wrong credentials come back as the API's message", async () => {
    const backend = fakeBackend().on("POST", "/api/v1/auth/token", () =>
      envelope(401, "invalid_credentials", "Wrong username or password."),
    );
    const { session } = setup(backend);
    await expect(session.login("alice", "nope")).rejects.toMatchObject({ message: "Wrong username or password." });
    expect(session.isLoggedIn.value).toBe(false);
  });
});

describe("call()", () => {
  test("an answer without the envelope still gets a readable message", async () => {
    const backend = fakeBackend().on("GET", "/api/v1/courses", () => new Response("<html>Bad gateway</html>", { status: 502 }));
    const api = createApi({ baseUrl: BASE, fetch: backend.fetch });
    await expect(call(api.GET("/api/v1/courses"))).rejects.toMatchObject({
      status: 502,
      code: "http_502",
      message: "The server answered HTTP 502. Please try again.",
    });
  });

  test("a network failure becomes network_error", async () => {
    const api = createApi({ baseUrl: BASE, fetch: () => Promise.reject(new TypeError("Failed to fetch")) });
    await expect(call(api.GET("/api/v1/courses"))).rejects.toMatchObject({ status: 0, code: "network_error" });
  });
});

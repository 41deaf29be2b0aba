// The whole purchase in a real browser: Debian's Chromium driven by playwright-core against a
// backend this test starts itself (embedded default: Postgres from the wheel in a fresh temp VAR_DIR, in-process
// worker, the Alipay dev gateway), serving the built app from web/dist.
//
// Needs: `npm run build` first (make web-test does it), the project's .venv (BACKEND_PYTHON
// overrides), /usr/bin/chromium (CHROMIUM_PATH overrides). UPDATE_DOCS=1 also rewrites the
// README screenshots web/docs/cart.png and web/docs/checkout.png.
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page, type Request } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { FIRST_LOAD_BUDGET_BYTES } from "../vite.config";

const WEB = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const REPO = resolve(WEB, "..");
const PYTHON = process.env.BACKEND_PYTHON || join(REPO, ".venv/bin/python");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const RESULTS = join(WEB, "test-results/e2e");
const DOCS = join(WEB, "docs");
const PAYMENT_TIMEOUT_SECONDS = 8;
const STEP_TIMEOUT_MS = 15_000;

let server: ChildProcess | undefined;
let varDir = "";
let base = "";
let browser: Browser;
let context: BrowserContext;
let page: Page;
let token = "";
let shot = 0;
const pageErrors: string[] = [];

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => (typeof address === "object" && address ? resolvePort(address.port) : reject(new Error("no port"))));
    });
  });
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = STEP_TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

async function api<T = unknown>(path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const response = await fetch(`${base}/api/v1${path}`, {
    ...init,
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}), ...init.headers },
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
}

type OrderJson = { order_no: string; status: string; pay_amount: string; points_used: number; coupon_discount: string; cancel_reason: string };

async function screenshot(name: string, docsName?: string) {
  const file = join(RESULTS, `${String(++shot).padStart(2, "0")}-${name}.png`);
  if (!docsName) {
    await page.screenshot({ path: file, fullPage: true });
    return;
  }
  // For the README: without the toasts of earlier steps, after the tab bar has slid into place.
  const hideToasts = await page.addStyleTag({ content: ".el-message { display: none !important; }" });
  await page.waitForTimeout(400);
  await page.screenshot({ path: file, fullPage: true });
  await hideToasts.evaluate((element) => (element as Element).remove());
  if (process.env.UPDATE_DOCS === "1") {
    mkdirSync(DOCS, { recursive: true });
    copyFileSync(file, join(DOCS, docsName));
  }
}

const money = (testId: string) => page.locator(`[data-test="${testId}"]`);

beforeAll(async () => {
  if (!existsSync(join(WEB, "dist/index.html"))) throw new Error("web/dist is missing: run `npm run build` first");
  if (!existsSync(PYTHON)) throw new Error(`no Python at ${PYTHON}: run \`make run\` or \`make test\` once, or set BACKEND_PYTHON`);
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`);
  rmSync(RESULTS, { recursive: true, force: true });
  mkdirSync(RESULTS, { recursive: true });

  varDir = mkdtempSync(join(tmpdir(), "shop-e2e-"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    VAR_DIR: varDir,
    PUBLIC_BASE_URL: base,
    SPA_DIST_DIR: join(WEB, "dist"),
    ORDER_PAYMENT_TIMEOUT_SECONDS: String(PAYMENT_TIMEOUT_SECONDS),
    SWEEP_INTERVAL_SECONDS: "3",
    AUTH_RATE_LIMIT: "0",
    DEBUG: "0",
    SECRET_KEY: "e2e-only-secret-key-" + "x".repeat(40),
    ALIPAY_DEV_GATEWAY: "1",
  };
  // The embedded default (Postgres from the wheel, with its data in VAR_DIR), whatever the calling
  // shell has set.
  for (const name of ["DATABASE_URL", "REDIS_URL", "FRONTEND_URL", "ALIPAY_GATEWAY_URL", "ALIPAY_NOTIFY_URL", "ALIPAY_RETURN_URL", "DJANGO_SETTINGS_MODULE"]) {
    delete env[name];
  }
  const log = createWriteStream(join(RESULTS, "server.log"));
  // As `make run` does: core.embedded_database starts the database, runs the rest, stops it after.
  const serve = [
    `"${PYTHON}" manage.py migrate --noinput -v 0`,
    `"${PYTHON}" manage.py seed_demo`,
    `exec env RUN_EMBEDDED_WORKER=1 "${PYTHON}" -m gunicorn core.wsgi:application --bind 127.0.0.1:${port} --workers 1 --threads 8 --access-logfile -`,
  ].join(" && ");
  server = spawn(PYTHON, ["-m", "core.embedded_database", "--", "sh", "-c", serve], {
    cwd: REPO,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  server.stdout?.pipe(log);
  server.stderr?.pipe(log);
  await waitFor("the backend to answer /api/v1/health", async () => ((await api("/health")).status === 200 ? true : undefined), 90_000);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run", "--disable-sync"],
    timeout: 30_000,
  });
  context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-GB" });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
});

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once("exit", r));
    server.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (server.exitCode === null) server.kill("SIGKILL");
  }
  if (varDir) rmSync(varDir, { recursive: true, force: true });
});

describe("the first load", () => {
  test("is served precompressed, with hashed files cached for good, within the budget", async () => {
    const fresh = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const first = await fresh.newPage();
    const assets: { url: string; encoding: string; cache: string; bytes: number }[] = [];
    first.on("requestfinished", async (request) => {
      if (!["script", "stylesheet"].includes(request.resourceType())) return;
      const response = await request.response();
      const sizes = await request.sizes();
      const headers = (await response?.allHeaders()) ?? {};
      assets.push({ url: request.url(), encoding: headers["content-encoding"] ?? "", cache: headers["cache-control"] ?? "", bytes: sizes.responseBodySize });
    });
    await first.goto(`${base}/`);
    await first.locator('[data-test="course-1"]').waitFor();
    await first.waitForLoadState("networkidle");
    await fresh.close();
    expect(assets.length).toBeGreaterThan(0);
    for (const asset of assets) {
      expect(asset.encoding, asset.url).toBe("br");
      expect(asset.cache, asset.url).toContain("immutable");
    }
    const total = assets.reduce((sum, asset) => sum + asset.bytes, 0);
    console.log(`first load: ${assets.length} JS/CSS files, ${(total / 1000).toFixed(1)} kB as sent (brotli)`);
    expect(total).toBeLessThanOrEqual(FIRST_LOAD_BUDGET_BYTES);
  });
});

describe("the shop, end to end", () => {
  let paidOrderNo = "";

  test("logs in as alice and comes back to the page it started on", async () => {
    await page.goto(`${base}/`);
    await page.locator('[data-test="course-1"]').waitFor();
    await screenshot("courses-logged-out");
    await page.getByRole("link", { name: "Log in" }).click();
    await page.waitForURL(/\/login\?next=/);
    await page.getByLabel("Username").fill("alice");
    await page.getByLabel("Password", { exact: true }).fill("demo-pass-123");
    await screenshot("login");
    await page.locator('[data-test="login-submit"]').click();
    await page.waitForURL(`${base}/`);
    await expect(page.locator('[data-test="username"]').textContent()).resolves.toBe("alice");
    token = ((await api<{ access: string }>("/auth/token", { method: "POST", body: JSON.stringify({ username: "alice", password: "demo-pass-123" }) })).body).access;
  });

  test("claims two coupons in the coupon centre", async () => {
    await page.getByRole("link", { name: "Coupons" }).click();
    for (const id of [1, 2]) {
      const card = page.locator(`[data-test="claimable-${id}"]`);
      await card.locator('[data-test="claim"]').click();
      await card.getByText("Claimed").waitFor();
    }
    await screenshot("coupons");
    const mine = await api<{ count: number }>("/me/coupons");
    expect(mine.body.count).toBe(2);
  });

  test("adds two courses; the header badge counts them", async () => {
    await page.getByRole("link", { name: "Courses" }).click();
    for (const id of [1, 2]) {
      await page.locator(`[data-test="course-${id}"] [data-test="add-to-cart"]`).click();
      await page.locator(`[data-test="course-${id}"] [data-test="in-cart"]`).waitFor();
    }
    await page.locator('[data-test="cart-badge"] sup', { hasText: "2" }).waitFor();
    await screenshot("courses-in-cart");
  });

  test("cart: select one, select all, totals from the API", async () => {
    await page.locator('[data-test="nav-cart"]').click();
    await page.waitForURL(`${base}/cart`);
    await expect(money("cart-total").textContent()).resolves.toBe("¥498.00");
    const django = page.locator('[data-test^="cart-item-"]', { hasText: "Django in depth" });
    await django.locator('[data-test="item-select"]').click();
    await page.locator('[data-test="cart-total"]', { hasText: "¥199.00" }).waitFor();
    await page.locator('[data-test="select-all"]').click();
    await page.locator('[data-test="cart-total"]', { hasText: "¥498.00" }).waitFor();
    await screenshot("cart", "cart.png");
  });

  test("checkout: a coupon and points, a lost response, a double click: one order", async () => {
    await page.locator('[data-test="go-checkout"]').click();
    await page.waitForURL(`${base}/checkout`);
    await page.locator('[data-test="subtotal"]', { hasText: "¥498.00" }).waitFor();
    await page.locator(".coupon", { hasText: "满100减20" }).click();
    await page.locator('[data-test="coupon-discount"]', { hasText: "−¥20.00" }).waitFor();
    await page.getByRole("tab", { name: /Points/ }).click();
    await expect(page.locator('[data-test="points-rate"]').textContent()).resolves.toContain("10 points = ¥1.00");
    const points = page.locator(".points-row input");
    await points.fill("1000");
    await points.press("Tab");
    await page.locator('[data-test="pay-amount"]', { hasText: "¥378.00" }).waitFor();
    await page.getByRole("tab", { name: /Coupons/ }).click();
    await screenshot("checkout", "checkout.png");

    const placed: Request[] = [];
    page.on("request", (request) => {
      if (request.method() === "POST" && new URL(request.url()).pathname === "/api/v1/orders") placed.push(request);
    });
    // The first answer is lost on the way back: the server made the order, the page never hears.
    let lost = false;
    await page.route("**/api/v1/orders", async (route) => {
      if (route.request().method() !== "POST" || lost) return route.fallback();
      lost = true;
      await route.fetch();
      await route.abort("connectionreset");
    });
    await page.locator('[data-test="submit-order"]').click();
    await page.locator('[data-test="submit-error"]').waitFor();
    await screenshot("checkout-lost-response");
    expect((await api<{ count: number }>("/orders")).body.count).toBe(1);

    // The user tries again, impatiently.
    await page.locator('[data-test="submit-order"]').dblclick();
    await page.waitForURL(/\/dev\/alipay\//);
    const orders = await api<{ count: number; items: OrderJson[] }>("/orders");
    expect(orders.body.count).toBe(1);
    const keys = new Set(placed.map((r) => r.headers()["idempotency-key"]));
    expect(placed.length).toBeGreaterThanOrEqual(2);
    expect(keys.size).toBe(1);
    const replay = await placed[placed.length - 1].response();
    expect(replay?.status()).toBe(201);
    expect(replay?.headers()["idempotent-replayed"]).toBe("true");
    const [order] = orders.body.items;
    expect(order).toMatchObject({ status: "pending", pay_amount: "378.00", points_used: 1000, coupon_discount: "20.00" });
    paidOrderNo = order.order_no;
  });

  test("pays on the gateway page and lands on the order, paid", async () => {
    await expect(page.locator("#out-trade-no").textContent()).resolves.toBe(paidOrderNo);
    await expect(page.locator("#amount").textContent()).resolves.toBe("378.00");
    await screenshot("gateway");
    await page.locator("#pay").click();
    await page.waitForURL(new RegExp(`/orders/${paidOrderNo}\\?payment=`));
    await page.locator('[data-test="paid-banner"]').waitFor({ timeout: 30_000 });
    await expect(page.locator(".order-status").first().getAttribute("data-status")).resolves.toBe("paid");
    await screenshot("order-paid");
    const order = await api<OrderJson>(`/orders/${paidOrderNo}`);
    expect(order.body.status).toBe("paid");
  });

  test("an unpaid order is cancelled when its payment time runs out", async () => {
    await page.goto(`${base}/`);
    await page.locator('[data-test="course-3"] [data-test="add-to-cart"]').click();
    await page.locator('[data-test="course-3"] [data-test="in-cart"]').click();
    await page.locator('[data-test="go-checkout"]').click();
    await page.locator('[data-test="pay-amount"]', { hasText: "¥159.00" }).waitFor();
    await page.locator('[data-test="submit-order"]').click();
    await page.waitForURL(/\/dev\/alipay\//);
    const orderNo = (await page.locator("#out-trade-no").textContent()) ?? "";
    expect(orderNo).not.toBe("");

    await page.goto(`${base}/orders`);
    const card = page.locator(`[data-test="order-${orderNo}"]`);
    await card.locator('[data-status="pending"]').waitFor();
    await card.getByText("left to pay").waitFor();
    await screenshot("orders-pending");
    await card.locator('[data-status="cancelled"]').waitFor({ timeout: (PAYMENT_TIMEOUT_SECONDS + 25) * 1000 });
    await screenshot("orders-cancelled");
    const order = await api<OrderJson>(`/orders/${orderNo}`);
    expect(order.body.status).toBe("cancelled");
    expect((await api<{ count: number }>("/orders")).body.count).toBe(2);
  });

  test("a refused token sends the user to log in, then back to the page", async () => {
    await page.evaluate(() => {
      const session = JSON.parse(localStorage.getItem("shop.session") ?? "{}");
      localStorage.setItem("shop.session", JSON.stringify({ ...session, access: "not-a-token", expiresAt: Date.now() + 3_600_000 }));
    });
    await page.goto(`${base}/orders`);
    await page.waitForURL(/\/login\?next=(\/|%2F)orders$/);
    await page.getByText("Your session has expired").waitFor();
    await page.getByLabel("Username").fill("alice");
    await page.getByLabel("Password", { exact: true }).fill("demo-pass-123");
    await page.locator('[data-test="login-submit"]').click();
    await page.waitForURL(`${base}/orders`);
    await page.locator(`[data-test="order-${paidOrderNo}"]`).waitFor();
  });

  test("no uncaught error reached the page on the way", () => {
    expect(pageErrors).toEqual([]);
  });
});

// What the browser tests share: the backend each test file starts (the embedded default: Postgres
// from the wheel in a fresh temp VAR_DIR, in-process worker, the Alipay and WeChat Pay dev
// gateways, serving web/dist),
// Debian's Chromium, and the checks every page passes at every viewport: no horizontal scroll,
// tap targets of 44 px (phones), no serious or critical axe-core violation.
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { describe, expect, test } from "vitest";
import en from "../src/locales/en";
import zhCN from "../src/locales/zh-CN";

export const WEB = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const REPO = resolve(WEB, "..");
const PYTHON = process.env.BACKEND_PYTHON || join(REPO, ".venv/bin/python");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const RESULTS = join(WEB, "test-results/e2e");
/** This test file's screenshots and server log: test-results/e2e/<suite>/. */
let results = RESULTS;
const DOCS = join(WEB, "docs");
/** Long enough for a journey to pay, short enough to watch an order expire. */
export const PAYMENT_TIMEOUT_SECONDS = 30;
export const STEP_TIMEOUT_MS = 15_000;
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

export const PHONE = { width: 390, height: 844 };
export const DESKTOP = { width: 1280, height: 800 };
export type Viewport = typeof PHONE;
export const isPhone = (viewport: Viewport) => viewport.width < 600;
export const MESSAGES = { "zh-CN": zhCN, en } as const;
export type Lang = keyof typeof MESSAGES;
export const PASSWORD = "a-long-pass-phrase-42";

let server: ChildProcess | undefined;
let varDir = "";
export let base = "";
export let browser: Browser;
export const pageErrors: string[] = [];
/** Every axe run: page, viewport, language, and the violations by impact (for the summary). */
export const axeLog: { label: string; counts: Record<string, number>; ids: string[] }[] = [];

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

export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = STEP_TIMEOUT_MS): Promise<T> {
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

/** The API, called directly (as a user with `token`, when given). */
export async function api<T = unknown>(path: string, init: RequestInit & { token?: string } = {}): Promise<{ status: number; body: T }> {
  const { token, ...rest } = init;
  const send = () =>
    fetch(`${base}/api/v1${path}`, {
      ...rest,
      headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}), ...rest.headers },
    });
  let response: Response;
  try {
    response = await send();
  } catch (error) {
    // Node's fetch may reuse a kept-alive connection just as gunicorn closes it (its 2 s idle
    // timeout): the request never reached the app, so sending it again is safe.
    if ((error as { cause?: { code?: string } }).cause?.code !== "UND_ERR_SOCKET") throw error;
    response = await send();
  }
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
}

export async function tokenFor(username: string, password = "demo-pass-123"): Promise<string> {
  const answer = await api<{ access: string }>("/auth/token", { method: "POST", body: JSON.stringify({ username, password }) });
  return answer.body.access;
}

export async function startBackendAndBrowser(suite: string) {
  if (!existsSync(join(WEB, "dist/index.html"))) throw new Error("web/dist is missing: run `npm run build` first");
  if (!existsSync(PYTHON)) throw new Error(`no Python at ${PYTHON}: run \`make run\` or \`make test\` once, or set BACKEND_PYTHON`);
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`);
  results = join(RESULTS, suite);
  rmSync(results, { recursive: true, force: true });
  mkdirSync(results, { recursive: true });

  varDir = mkdtempSync(join(tmpdir(), "shop-e2e-"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The embedded default, whatever the calling shell has set: no database, broker or provider of
  // its own, only the two dev gateways.
  for (const name of Object.keys(env)) {
    if (/^(ALIPAY|WECHATPAY)_/.test(name)) delete env[name];
  }
  for (const name of ["DATABASE_URL", "REDIS_URL", "FRONTEND_URL", "DEV_GATEWAY_BASE_URL", "DJANGO_SETTINGS_MODULE"]) delete env[name];
  Object.assign(env, {
    VAR_DIR: varDir,
    PUBLIC_BASE_URL: base,
    SPA_DIST_DIR: join(WEB, "dist"),
    ORDER_PAYMENT_TIMEOUT_SECONDS: String(PAYMENT_TIMEOUT_SECONDS),
    SWEEP_INTERVAL_SECONDS: "3",
    AUTH_RATE_LIMIT: "0",
    DEBUG: "0",
    SECRET_KEY: "e2e-only-secret-key-" + "x".repeat(40),
    ALIPAY_DEV_GATEWAY: "1",
    WECHATPAY_DEV_GATEWAY: "1",
    // As `make run`: a buyer's refund inside the window is approved at once and sent through the
    // dev gateway by the in-process worker.
    REFUND_AUTO_APPROVE: "1",
  });
  const log = createWriteStream(join(results, "server.log"));
  // As `make run` does: core.embedded_database starts the database, runs the rest, stops it after.
  const serve = [
    `"${PYTHON}" manage.py migrate --noinput -v 0`,
    `"${PYTHON}" manage.py seed_demo`,
    `exec env RUN_EMBEDDED_WORKER=1 "${PYTHON}" -m gunicorn core.wsgi:application --bind 127.0.0.1:${port} --workers 1 --threads 8 --access-logfile -`,
  ].join(" && ");
  server = spawn(PYTHON, ["-m", "core.embedded_database", "--", "sh", "-c", serve], { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] });
  server.stdout?.pipe(log);
  server.stderr?.pipe(log);
  await waitFor("the backend to answer /api/v1/health", async () => ((await api("/health")).status === 200 ? true : undefined), 90_000);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run", "--disable-sync"],
    timeout: 30_000,
  });
}

export async function stopBackendAndBrowser() {
  await browser?.close().catch(() => undefined);
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once("exit", r));
    server.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (server.exitCode === null) server.kill("SIGKILL");
  }
  if (varDir) rmSync(varDir, { recursive: true, force: true });
}

/** A browser context as a buyer on this device would have it (a phone: touch, mobile UA). */
export async function newBuyer(viewport: Viewport): Promise<{ context: BrowserContext; page: Page }> {
  const phone = isPhone(viewport);
  const context = await browser.newContext({ viewport, isMobile: phone, hasTouch: phone, deviceScaleFactor: phone ? 2 : 1 });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(`${page.url()}: ${error.message}`));
  return { context, page };
}

/**
 * A buyer of their own with `courseIds` in the cart, logged in on a new device of this size and
 * language (the session and language put where the app keeps them, before it loads).
 */
export async function loggedInBuyer(name: string, viewport: Viewport, lang: Lang, courseIds: number[]) {
  const username = `${name}_${Date.now() % 1_000_000}`;
  expect((await api("/auth/register", { method: "POST", body: JSON.stringify({ username, password: PASSWORD }) })).status).toBe(201);
  const pair = await api<{ access: string; refresh: string; expires_in: number }>("/auth/token", {
    method: "POST",
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  const token = pair.body.access;
  for (const courseId of courseIds) {
    expect((await api("/cart/items", { method: "POST", token, body: JSON.stringify({ course_id: courseId }) })).status).toBe(201);
  }
  const { context, page } = await newBuyer(viewport);
  const session = { username, access: pair.body.access, refresh: pair.body.refresh, expiresAt: Date.now() + pair.body.expires_in * 1000 };
  await context.addInitScript(
    ([stored, locale]) => {
      if (!localStorage.getItem("shop.session")) localStorage.setItem("shop.session", stored);
      if (!localStorage.getItem("shop.locale")) localStorage.setItem("shop.locale", locale);
    },
    [JSON.stringify(session), lang] as const,
  );
  const device = isPhone(viewport) ? "phone" : "desktop";
  return {
    context,
    page,
    token,
    username,
    m: MESSAGES[lang],
    check: (label: string) => checkPage(page, viewport, `${label} (${device} ${lang})`),
    shot: (label: string, docs?: string) => screenshot(page, `${device}-${lang}-${label}`, docs),
  };
}

/** Controls smaller than 44 x 44 px, as "tag.class "text" w x h" (visible ones only). */
function smallTapTargets(): string[] {
  const selector =
    "a[href], button, [role=button], [role=tab], input:not([type=hidden]), select, textarea, label.el-checkbox, label.refund-choice, .el-input__wrapper, .el-input-number__decrease, .el-input-number__increase";
  const small: string[] = [];
  for (const element of document.querySelectorAll<HTMLElement>(selector)) {
    // An input inside its own label or Element Plus wrapper: the label / wrapper is what is tapped.
    if (element.matches("input") && element.closest("label.el-checkbox, label.coupon, label.pay-method, label.refund-choice, .el-input__wrapper")) continue;
    if (element.matches(".skip-link") && document.activeElement !== element) continue;
    const box = element.getBoundingClientRect();
    if (box.width === 0 || box.height === 0 || getComputedStyle(element).visibility === "hidden") continue;
    const { width, height } = box;
    if (width < 44 - 0.5 || height < 44 - 0.5) {
      small.push(`${element.tagName.toLowerCase()}.${element.className} "${(element.textContent ?? "").trim().slice(0, 24)}" ${Math.round(width)}x${Math.round(height)}`);
    }
  }
  return small;
}

/**
 * The checks every page passes: no horizontal scroll (scrollWidth <= innerWidth), 44 px tap
 * targets on a phone, and no serious or critical axe-core violation (WCAG 2.x A/AA rules and
 * best practices, colour contrast included).
 */
export async function checkPage(page: Page, viewport: Viewport, label: string) {
  await page.waitForLoadState("load");
  // Let toasts and transitions settle: axe reads colours as painted.
  await page.waitForTimeout(350);
  const width = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  expect(width.scroll, `${label}: wider than the ${width.inner} px screen`).toBeLessThanOrEqual(width.inner);
  if (isPhone(viewport)) expect(await page.evaluate(smallTapTargets), `${label}: tap targets under 44 px`).toEqual([]);
  // Evaluated through the DevTools protocol, as a test tool and not as a page script: the shop's
  // Content-Security-Policy (script-src 'self') rightly refuses an inline <script>.
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (context: Document, options: object) => Promise<{ violations: { id: string; impact: string | null; nodes: { target: string[]; failureSummary?: string }[] }[] }> } }).axe;
    const result = await axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact ?? "unknown", nodes: v.nodes.slice(0, 3).map((n) => `${n.target.join(" ")}: ${n.failureSummary ?? ""}`) }));
  });
  const counts: Record<string, number> = {};
  for (const v of violations) counts[v.impact] = (counts[v.impact] ?? 0) + 1;
  axeLog.push({ label, counts, ids: violations.map((v) => `${v.impact}:${v.id}`) });
  const blocking = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect(blocking, `${label}: axe-core violations`).toEqual([]);
}

let shot = 0;
/** A screenshot into test-results/e2e; with UPDATE_DOCS=1 and a docs name, also into web/docs. */
export async function screenshot(page: Page, name: string, docsName?: string) {
  const file = join(results, `${String(++shot).padStart(2, "0")}-${name}.png`);
  if (!docsName) {
    await page.screenshot({ path: file, fullPage: true });
    return;
  }
  // For the README: the screen as the buyer sees it (the bottom bar in place), without toasts.
  // Hidden through element.style (the CSSOM), which the shop's CSP allows, not an injected <style>.
  const hide = (shown: boolean) =>
    page.evaluate((display) => {
      for (const toast of document.querySelectorAll<HTMLElement>(".el-message")) toast.style.display = display;
    }, shown ? "" : "none");
  await hide(false);
  await page.waitForTimeout(300);
  await page.screenshot({ path: file });
  await hide(true);
  if (process.env.UPDATE_DOCS === "1") {
    mkdirSync(DOCS, { recursive: true });
    copyFileSync(file, join(DOCS, docsName));
  }
}

/** Every test file's last checks: no page threw an uncaught error, the browser survived them all. */
export function checksOnTheWay() {
  describe("on the way", () => {
    test("no uncaught error reached a page", () => {
      expect(pageErrors).toEqual([]);
    });
    test("the browser is still up", () => {
      expect(browser.isConnected()).toBe(true);
    });
  });
}

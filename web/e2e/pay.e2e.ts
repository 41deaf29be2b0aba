// Paying by Alipay or WeChat Pay, on a computer and on a phone, in a real browser against the dev
// gateways of a backend this test starts itself (e2e/support.ts). The channel follows the device
// (a coarse pointer pays in the phone browser): Alipay page pay and WeChat Pay Native (a QR code,
// scanned by a second browser standing in for the buyer's phone) at 1280x800, Alipay wap and
// WeChat Pay H5 at 390x844; a pending order switches from one provider to the other on each. Every
// new state passes the width, tap-target and axe-core checks, in 简体中文 and in English.
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { qrImageUrl } from "../src/wechatQr";
import {
  api,
  axeLog,
  base,
  checksOnTheWay,
  DESKTOP,
  loggedInBuyer,
  newBuyer,
  PHONE,
  startBackendAndBrowser,
  stopBackendAndBrowser,
  waitFor,
} from "./support";

type Attempt = { provider: string; channel: string; status: string };
type OrderJson = { order_no: string; status: string; pay_amount: string; pay_type: string; payment_attempts: Attempt[] };
const byTest = (page: Page, id: string) => page.locator(`[data-test="${id}"]`);
const yuan = (amount: string) => `¥${amount}`;

beforeAll(() => startBackendAndBrowser("pay"));
afterAll(async () => {
  const summary = axeLog.map((run) => `  ${run.label.padEnd(44)} ${run.ids.length ? run.ids.join(", ") : "no violations"}`);
  console.log(`axe-core, ${axeLog.length} page checks:\n${summary.join("\n")}`);
  await stopBackendAndBrowser();
});

async function orderOf(token: string, orderNo: string): Promise<OrderJson> {
  return (await api<OrderJson>(`/orders/${orderNo}`, { token })).body;
}

/** Waits until the order's attempts are as given (provider/channel -> status); the worker closes the others. */
async function attemptsBecome(token: string, orderNo: string, wanted: Record<string, string>) {
  const text = (statuses: Record<string, string>) => JSON.stringify(Object.entries(statuses).sort());
  await waitFor(`attempts of ${orderNo} to be ${text(wanted)}`, async () => {
    const attempts = (await orderOf(token, orderNo)).payment_attempts.map((a) => [`${a.provider}/${a.channel}`, a.status]);
    return text(Object.fromEntries(attempts)) === text(wanted) ? true : undefined;
  });
}

/** At checkout: choose the provider, place the order. */
async function placeOrder(page: Page, provider: "alipay" | "wechat", check: (label: string) => Promise<void>) {
  await page.goto(`${base}/checkout`);
  await byTest(page, "pay-amount").waitFor();
  await byTest(page, `pay-${provider}`).click();
  expect(await byTest(page, `pay-${provider}`).locator("input").isChecked()).toBe(true);
  await check(`checkout, ${provider} chosen`);
  await byTest(page, "submit-order").click();
}

/** The WeChat Pay QR code on screen: its code_url, checked against the image drawn and the API. */
async function shownCode(page: Page, token: string, orderNo: string): Promise<string> {
  const qr = byTest(page, "wechat-qr");
  await qr.waitFor();
  const codeUrl = (await qr.getAttribute("data-code-url")) ?? "";
  expect(codeUrl).toContain("/dev/wechatpay/scanned/");
  // The image is the QR code of exactly that URL ...
  expect(await qr.getAttribute("src")).toBe(await qrImageUrl(codeUrl));
  // ... and asking the API again for WeChat Pay Native reuses the open attempt: the same code.
  const again = await api<{ code_url: string }>(`/orders/${orderNo}/pay`, { method: "POST", token, body: JSON.stringify({ provider: "wechat", channel: "native" }) });
  expect(again.body.code_url).toBe(codeUrl);
  return codeUrl;
}

/** "The phone": another device opens the code_url (as scanning the QR code does) and pays. */
async function payOnThePhone(codeUrl: string, amount: string) {
  const phone: { context: BrowserContext; page: Page } = await newBuyer(PHONE);
  await phone.page.goto(codeUrl);
  expect(await phone.page.locator("#trade-type").textContent()).toContain("Native");
  expect(await phone.page.locator("#amount").textContent()).toBe(amount);
  await phone.page.locator("#pay").click();
  await phone.page.locator("#paid").waitFor();
  await phone.context.close();
}

describe("on a computer (1280x800)", () => {
  test("WeChat Pay: the QR code with the amount and countdown; paid on the phone, the page turns paid by itself", async () => {
    const { context, page, token, m, check, shot } = await loggedInBuyer("wx_native", DESKTOP, "zh-CN", [2]);
    const scripts: string[] = [];
    page.on("request", (request) => request.resourceType() === "script" && scripts.push(new URL(request.url()).pathname));
    const qrLibrary = () => scripts.filter((path) => /^\/assets\/qrcode-[\w-]+\.js$/.test(path));
    await placeOrder(page, "wechat", check);
    // The QR code library is not part of any page's first load: it comes when a code is drawn.
    expect(qrLibrary()).toEqual([]);
    await page.waitForURL(/\/orders\/\d+\?pay=wechat$/);
    const orderNo = new URL(page.url()).pathname.split("/").pop()!;
    const order = await orderOf(token, orderNo);
    expect(order.pay_type).toBe("wechat");

    const panel = byTest(page, "wechat-qr-panel");
    await panel.getByRole("heading", { name: m.payment.qr.title }).waitFor();
    const codeUrl = await shownCode(page, token, orderNo);
    expect(qrLibrary()).toHaveLength(1);
    expect(await byTest(page, "wechat-qr").getAttribute("alt")).toBe(`微信支付二维码：用微信扫码支付 ${yuan(order.pay_amount)}`);
    expect(await byTest(page, "qr-amount").textContent()).toBe(yuan(order.pay_amount));
    await panel.locator('[data-test="countdown"]').filter({ hasText: /剩余 \d\d:\d\d/ }).waitFor();
    expect(await byTest(page, "order-pay").count()).toBe(0);
    await check("order, WeChat Pay QR code");
    await shot("order-wechat-qr", "order-wechat-qr-desktop.png");

    // Nothing on this page is touched from here: a marker shows it is never reloaded.
    await page.evaluate(() => ((window as unknown as { stillHere: boolean }).stillHere = true));
    const polls: string[] = [];
    page.on("request", (request) => {
      if (request.method() === "GET" && new URL(request.url()).pathname === `/api/v1/orders/${orderNo}`) polls.push(request.url());
    });
    await payOnThePhone(codeUrl, order.pay_amount);
    await byTest(page, "paid-banner").waitFor({ timeout: 10_000 });
    expect(await page.evaluate(() => (window as unknown as { stillHere?: boolean }).stillHere)).toBe(true);
    expect(new URL(page.url()).search).toBe("?pay=wechat");
    expect(polls.length).toBeGreaterThan(0);
    await byTest(page, "paid-banner").getByText(m.order.paidTitle).waitFor();
    expect(await byTest(page, "wechat-qr-panel").count()).toBe(0);
    expect(await byTest(page, "order-announcement").textContent()).toBe(m.payment.paidNow);
    await byTest(page, "attempt-wechat-native").and(page.locator('[data-status="paid"]')).waitFor();
    await check("order, paid by WeChat Pay");
    await shot("order-paid-wechat");
    // Polling stopped with the order paid.
    const seen = polls.length;
    await page.waitForTimeout(4500);
    expect(polls.length).toBe(seen);
    await context.close();
  });

  test("a pending order switches from WeChat Pay's QR code to Alipay's cashier and is paid there", async () => {
    const { context, page, token, m, check, shot } = await loggedInBuyer("switch_desk", DESKTOP, "en", [4]);
    await placeOrder(page, "wechat", check);
    await page.waitForURL(/\/orders\/\d+\?pay=wechat$/);
    const orderNo = new URL(page.url()).pathname.split("/").pop()!;
    await shownCode(page, token, orderNo);
    expect(await byTest(page, "wechat-qr").getAttribute("alt")).toMatch(/^WeChat Pay QR code: scan it with WeChat to pay ¥\d+\.\d\d$/);
    await byTest(page, "wechat-qr-panel").getByText(m.payment.qr.steps).waitFor();
    await check("order, WeChat Pay QR code");
    await shot("order-wechat-qr");

    await byTest(page, "pay-alipay").click();
    await byTest(page, "wechat-qr-panel").waitFor({ state: "detached" });
    expect(await byTest(page, "order-pay").getAttribute("aria-label")).toBe("Pay now with Alipay");
    await check("order, Alipay chosen instead");
    await byTest(page, "order-pay").click();
    await page.waitForURL(/\/dev\/alipay\//);
    expect(page.url()).toContain("method=alipay.trade.page.pay");
    const order = await orderOf(token, orderNo);
    expect(await page.locator("#amount").textContent()).toBe(order.pay_amount);
    await page.locator("#pay").click();
    await page.waitForURL(new RegExp(`/orders/${orderNo}\\?payment=paid`));
    await byTest(page, "paid-banner").waitFor({ timeout: 30_000 });
    await byTest(page, "attempt-alipay-page").and(page.locator('[data-status="paid"]')).waitFor();
    // Paid on one attempt, the other is closed at WeChat Pay (by the worker, shortly after).
    await attemptsBecome(token, orderNo, { "alipay/page": "paid", "wechat/native": "closed" });
    await page.reload();
    await byTest(page, "payment-attempts").getByText("Closed").waitFor();
    await check("order, paid after switching");
    await shot("order-paid-switched");
    await context.close();
  });
});

describe("on a phone (390x844)", () => {
  test("WeChat Pay H5: the order goes to WeChat Pay's page, is paid, and comes back paid", async () => {
    const { context, page, token, m, check, shot } = await loggedInBuyer("wx_h5", PHONE, "en", [3]);
    await page.goto(`${base}/checkout`);
    await byTest(page, "pay-amount").waitFor();
    await byTest(page, "pay-wechat").click();
    expect(await byTest(page, "pay-wechat").textContent()).toContain(m.payment.hint.wechatPhone);
    await check("checkout, WeChat Pay chosen");
    await shot("checkout-wechat");
    await byTest(page, "submit-order").click();
    await page.waitForURL(/\/dev\/wechatpay\/h5/);
    expect(await page.locator("#trade-type").textContent()).toContain("H5");
    const orderNo = (await page.locator("#out-trade-no").textContent())!.replace(/_\d+$/, "");
    const order = await orderOf(token, orderNo);
    expect(order.pay_type).toBe("wechat");
    expect(await page.locator("#amount").textContent()).toBe(order.pay_amount);
    await page.locator("#pay").click();
    await page.waitForURL(new RegExp(`/orders/${orderNo}\\?payment=returned$`));
    await byTest(page, "paid-banner").waitFor({ timeout: 30_000 });
    await byTest(page, "attempt-wechat-h5").and(page.locator('[data-status="paid"]')).waitFor();
    await check("order, paid by WeChat Pay H5");
    await shot("order-paid-wechat-h5");
    await context.close();
  });

  test("Alipay wap, Back to the order, switch to WeChat Pay H5, paid", async () => {
    const { context, page, token, m, check, shot } = await loggedInBuyer("switch_phone", PHONE, "zh-CN", [5]);
    await placeOrder(page, "alipay", check);
    await page.waitForURL(/\/dev\/alipay\//);
    expect(page.url()).toContain("method=alipay.trade.wap.pay");
    const orderNo = (await page.locator("#out-trade-no").textContent()) ?? "";

    await page.goBack();
    await page.waitForURL(new RegExp(`/orders/${orderNo}\\?payment=left$`));
    await byTest(page, "payment-not-paid").waitFor();
    // Alipay, the last one tried, is offered first; WeChat Pay beside it.
    expect(await byTest(page, "pay-alipay").locator("input").isChecked()).toBe(true);
    await byTest(page, "attempt-alipay-wap").getByText(m.payment.attempts.status.open).waitFor();
    await check("order, not paid, choose how to pay");
    // For the README: the choice in the middle of the screen, clear of the bottom bar.
    await byTest(page, "order-pay-methods").evaluate((element) => element.scrollIntoView({ block: "center" }));
    await shot("order-pay-methods", "order-pay-methods-phone.png");

    await byTest(page, "pay-wechat").click();
    expect(await byTest(page, "order-pay").getAttribute("aria-label")).toBe("用微信支付继续支付");
    await byTest(page, "order-pay").click();
    await page.waitForURL(/\/dev\/wechatpay\/h5/);
    await page.locator("#pay").click();
    await page.waitForURL(new RegExp(`/orders/${orderNo}\\?payment=returned$`));
    await byTest(page, "paid-banner").waitFor({ timeout: 30_000 });
    await attemptsBecome(token, orderNo, { "wechat/h5": "paid", "alipay/wap": "closed" });
    await page.reload();
    await byTest(page, "attempt-alipay-wap").getByText(m.payment.attempts.status.closed).waitFor();
    await check("order, paid after switching");
    await shot("order-paid-switched");
    await context.close();
  });
});

checksOnTheWay();

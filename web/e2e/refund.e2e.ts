// After buying: 我的课程 and refunds, in a real browser against a backend this test starts itself
// (e2e/support.ts, with REFUND_AUTO_APPROVE=1 as `make run` has it). A buyer of their own buys two
// courses through the Alipay dev gateway, finds them in My courses and marked owned on the course
// list, asks for a refund of one from My courses, and watches it approved and sent back through the
// dev gateway by the in-process worker: the order turns partially_refunded, the course leaves My
// courses and is offered again. At 390x844 and 1280x800, in 简体中文 and in English; every new state
// passes the width, tap-target and axe-core checks. Then a refusal: a line refunded meanwhile.
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  api,
  axeLog,
  base,
  checksOnTheWay,
  DESKTOP,
  isPhone,
  loggedInBuyer,
  PHONE,
  startBackendAndBrowser,
  stopBackendAndBrowser,
  type Lang,
  type Viewport,
} from "./support";

type Line = { id: number; course_id: number; refund_status: string | null; refundable_amount: string };
type Refund = { id: number; status: string; amount: string; lines: { order_line_id: number }[] };
type OrderJson = { order_no: string; status: string; pay_amount: string; lines: Line[]; refunds: Refund[] };
type OwnedJson = { count: number; items: { course: { id: number }; order_line_id: number; refund_status: string | null }[] };
const byTest = (page: Page, id: string) => page.locator(`[data-test="${id}"]`);
/** Python from zero (¥199.00) and Django in depth (¥299.00), from seed_demo. */
const KEPT = 1;
const REFUNDED = 2;

beforeAll(() => startBackendAndBrowser("refund"));
afterAll(async () => {
  const summary = axeLog.map((run) => `  ${run.label.padEnd(44)} ${run.ids.length ? run.ids.join(", ") : "no violations"}`);
  console.log(`axe-core, ${axeLog.length} page checks:\n${summary.join("\n")}`);
  await stopBackendAndBrowser();
});

/** Confirms Element Plus's dialog (loaded when first needed). */
async function confirmDialog(page: Page, title: string) {
  const box = page.locator(".el-message-box");
  await box.locator(".el-message-box__title").filter({ hasText: title }).waitFor();
  await box.locator(".el-message-box__btns .el-button--primary").click();
  await box.waitFor({ state: "hidden" });
}

/** Checkout with Alipay, paid on the dev gateway: lands on the order, paid. Returns its number. */
async function buyThroughAlipay(page: Page, viewport: Viewport): Promise<string> {
  await page.goto(`${base}/checkout`);
  await byTest(page, "pay-amount").filter({ hasText: "¥498.00" }).waitFor();
  await byTest(page, "submit-order").click();
  await page.waitForURL(/\/dev\/alipay\//);
  expect(page.url()).toContain(isPhone(viewport) ? "method=alipay.trade.wap.pay" : "method=alipay.trade.page.pay");
  const orderNo = (await page.locator("#out-trade-no").textContent()) ?? "";
  await page.locator("#pay").click();
  await page.waitForURL(new RegExp(`/orders/${orderNo}\\?payment=paid`));
  await byTest(page, "paid-banner").waitFor({ timeout: 30_000 });
  return orderNo;
}

const journeys: { name: string; viewport: Viewport; lang: Lang }[] = [
  { name: "phone 390x844, 简体中文", viewport: PHONE, lang: "zh-CN" },
  { name: "phone 390x844, English", viewport: PHONE, lang: "en" },
  { name: "desktop 1280x800, 简体中文", viewport: DESKTOP, lang: "zh-CN" },
  { name: "desktop 1280x800, English", viewport: DESKTOP, lang: "en" },
];

describe.each(journeys)("bought, then refunded one course: $name", ({ viewport, lang }) => {
  const device = isPhone(viewport) ? "phone" : "desktop";

  test("two courses in My courses and owned; one refunded leaves them and is offered again", async () => {
    const { context, page, token, m, check, shot } = await loggedInBuyer(`refund_${device}_${lang === "en" ? "en" : "zh"}`, viewport, lang, [KEPT, REFUNDED]);
    const docs = (name: string) => (lang === "zh-CN" ? `${name}-${device}.png` : undefined);

    // Nothing bought yet: My courses says so and leads to the courses.
    await page.goto(`${base}/me/courses`);
    await byTest(page, "my-courses-empty").getByText(m.myCourses.empty).waitFor();
    await check("my courses, empty");
    expect(await byTest(page, "browse-courses").getAttribute("href")).toBe("/");

    const orderNo = await buyThroughAlipay(page, viewport);
    const paid = (await api<OrderJson>(`/orders/${orderNo}`, { token })).body;
    expect(paid.status).toBe("paid");
    const refundedLine = paid.lines.find((line) => line.course_id === REFUNDED)!;
    // The paid order offers refunds until its window closes (7 days by default).
    await byTest(page, "refund-window").and(page.locator('[data-window="open"]')).waitFor();
    await byTest(page, "refund-start").waitFor();
    await check("order, paid, refundable");

    // My courses: both, newest first, with what was paid, the order and the refund deadline.
    await page.getByRole("navigation", { name: m.nav.label }).getByRole("link", { name: m.nav.myCourses, exact: true }).click();
    await page.waitForURL(`${base}/me/courses`);
    await page.getByRole("heading", { level: 1, name: m.titles.myCourses }).waitFor();
    for (const courseId of [KEPT, REFUNDED]) {
      const item = byTest(page, `my-course-${courseId}`);
      await item.waitFor();
      expect(await item.locator('[data-test="order-link"]').getAttribute("href")).toBe(`/orders/${orderNo}`);
      await item.locator('[data-test="refundable-until"]').waitFor();
    }
    expect(await byTest(page, `my-course-${REFUNDED}`).locator('[data-test="price-paid"]').textContent()).toBe(`¥${refundedLine.refundable_amount}`);
    await check("my courses, two");
    await shot("my-courses", docs("my-courses"));

    // The course list and the course page say 已购买 / Owned, not add to cart.
    await page.getByRole("navigation", { name: m.nav.label }).getByRole("link", { name: m.nav.courses, exact: true }).click();
    for (const courseId of [KEPT, REFUNDED]) await byTest(page, `course-${courseId}`).locator('[data-test="owned"]').filter({ hasText: m.course.owned }).waitFor();
    await byTest(page, "course-3").locator('[data-test="add-to-cart"]').waitFor();
    await check("courses, two owned");

    // From My courses, 申请退款 on one course: its order's page, the form open with that line ticked.
    await page.goto(`${base}/me/courses`);
    await byTest(page, `my-course-${REFUNDED}`).locator('[data-test="request-refund"]').click();
    await page.waitForURL(new RegExp(`/orders/${orderNo}\\?refund=${refundedLine.id}$`));
    const form = byTest(page, "refund-form");
    await form.waitFor();
    const chosen = byTest(page, `refund-line-${refundedLine.id}`).locator("input");
    expect(await chosen.isChecked()).toBe(true);
    expect(await byTest(page, `refund-line-${paid.lines.find((l) => l.course_id === KEPT)!.id}`).locator("input").isChecked()).toBe(false);
    await page.getByLabel(m.refund.reason).fill(lang === "en" ? "Not what I expected" : "内容和介绍不符");
    await check("order, refund form");
    await byTest(page, "refund-form").scrollIntoViewIfNeeded();
    await shot("refund-form", docs("refund-form"));

    await byTest(page, "refund-submit").click();
    await confirmDialog(page, m.refund.confirmTitle);

    // Approved at once (REFUND_AUTO_APPROVE), sent through the dev gateway by the worker: the page
    // looks again by itself until the refund has succeeded.
    const refundRow = page.locator('[data-test^="refund-"][data-status]').filter({ has: byTest(page, "refund-status") });
    await refundRow.and(page.locator('[data-status="succeeded"]')).waitFor({ timeout: 30_000 });
    expect(await refundRow.count()).toBe(1);
    expect(await refundRow.locator('[data-test="refund-amount"]').textContent()).toBe(`¥${refundedLine.refundable_amount}`);
    await byTest(page, `order-line-${REFUNDED}`).locator('[data-test="line-refund"][data-status="succeeded"]').waitFor();
    expect(await byTest(page, `order-line-${KEPT}`).locator('[data-test="line-refund"]').count()).toBe(0);
    await page.locator('.order-summary .order-status[data-status="partially_refunded"]').waitFor();
    expect(await page.locator(".order-summary .order-status").textContent()).toContain(m.order.status.partially_refunded);
    // The other course can still be refunded.
    await byTest(page, "refund-start").waitFor();
    // axe reads colours as painted: not the success toast while it fades.
    await page.locator(".el-message").waitFor({ state: "detached" });
    await check("order, partly refunded");
    // For the picture: the refunded line (under the sticky header) and the refund below it.
    await byTest(page, `order-line-${REFUNDED}`).evaluate((line) => window.scrollTo(0, line.getBoundingClientRect().top + window.scrollY - 140));
    await shot("order-refunded");

    const after = (await api<OrderJson>(`/orders/${orderNo}`, { token })).body;
    expect(after.status).toBe("partially_refunded");
    expect(after.refunds).toHaveLength(1);
    expect(after.refunds[0]).toMatchObject({ status: "succeeded", amount: refundedLine.refundable_amount, lines: [{ order_line_id: refundedLine.id }] });

    // My courses keeps one; the refunded course is offered again.
    await page.getByRole("navigation", { name: m.nav.label }).getByRole("link", { name: m.nav.myCourses, exact: true }).click();
    await byTest(page, `my-course-${KEPT}`).waitFor();
    expect(await byTest(page, `my-course-${REFUNDED}`).count()).toBe(0);
    expect((await api<OwnedJson>("/me/courses", { token })).body.items.map((item) => item.course.id)).toEqual([KEPT]);
    await check("my courses, one left");
    await page.getByRole("navigation", { name: m.nav.label }).getByRole("link", { name: m.nav.courses, exact: true }).click();
    await byTest(page, `course-${REFUNDED}`).locator('[data-test="add-to-cart"]').waitFor();
    await byTest(page, `course-${KEPT}`).locator('[data-test="owned"]').waitFor();
    await page.goto(`${base}/courses/${REFUNDED}`);
    await byTest(page, "add-to-cart").waitFor();
    expect(await byTest(page, "owned").count()).toBe(0);
    await context.close();
  });
});

describe("a refusal is told, and the page shows what changed (phone, 简体中文)", () => {
  test("a line refunded from elsewhere while the form was open", async () => {
    const { context, page, token, m, check } = await loggedInBuyer("refund_race", PHONE, "zh-CN", [KEPT, REFUNDED]);
    const orderNo = await buyThroughAlipay(page, PHONE);
    const order = (await api<OrderJson>(`/orders/${orderNo}`, { token })).body;
    const line = order.lines.find((l) => l.course_id === KEPT)!;

    await byTest(page, "refund-start").click();
    await byTest(page, `refund-line-${line.id}`).click();
    // Meanwhile, another device asks for the same course.
    const elsewhere = await api<Refund>(`/orders/${orderNo}/refunds`, { method: "POST", token, body: JSON.stringify({ order_line_ids: [line.id], reason: "" }) });
    expect(elsewhere.status).toBe(201);

    await byTest(page, "refund-submit").click();
    await confirmDialog(page, m.refund.confirmTitle);
    await page.locator(".el-message", { hasText: m.errors.order_line_already_refunded }).waitFor();
    // Loaded again: that course is no longer offered, and its refund is listed.
    await byTest(page, `order-line-${KEPT}`).locator('[data-test="line-refund"]').waitFor();
    expect(await byTest(page, `refund-line-${line.id}`).count()).toBe(0);
    await byTest(page, `refund-${elsewhere.body.id}`).waitFor();
    await check("order, refund refused: refunded meanwhile");
    expect((await api<OrderJson>(`/orders/${orderNo}`, { token })).body.refunds).toHaveLength(1);
    await context.close();
  });
});

checksOnTheWay();

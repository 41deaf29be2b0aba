import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { ApiError, NETWORK_ERROR, type ApiErrorCode, type ErrorCode } from "@/api/client";
import { couponCondition, couponHeadline, couponTerms, formatDate, formatMoney, zhe } from "@/format";
import { initialLocale, LOCALE_KEY, setLocale } from "@/i18n";
import { errorText } from "@/i18n/errors";
import en from "@/locales/en";
import zhCN from "@/locales/zh-CN";
import { memoryStorage } from "./fakeApi";

const fixed = { kind: "fixed", amount_off: "20.00", percent_off: null, threshold: "100.00" } as const;
const fixedNoMinimum = { kind: "fixed", amount_off: "50.00", percent_off: null, threshold: "0.00" } as const;
const percent = { kind: "percent", amount_off: null, percent_off: "20.00", threshold: "0.00" } as const;
const percentOver = { kind: "percent", amount_off: null, percent_off: "15.00", threshold: "200.00" } as const;

describe("money and dates, per language", () => {
  test("money is the API's decimal string, formatted exactly", async () => {
    await setLocale("zh-CN");
    expect(formatMoney("1234567.10")).toBe("¥1,234,567.10");
    expect(formatMoney("0.30")).toBe("¥0.30");
    expect(formatMoney("20.00", { whole: true })).toBe("¥20");
    expect(formatMoney("12.50", { whole: true })).toBe("¥12.50");
    // A float would round this; the string is formatted as it is.
    expect(formatMoney("90071992547409.93")).toBe("¥90,071,992,547,409.93");
    await setLocale("en");
    expect(formatMoney("1234567.10")).toBe("¥1,234,567.10");
  });

  test("dates read naturally in each language", async () => {
    await setLocale("zh-CN");
    expect(formatDate("2026-11-25T12:00:00Z")).toBe("2026年11月25日");
    await setLocale("en");
    expect(formatDate("2026-11-25T12:00:00Z")).toBe("25 Nov 2026");
  });
});

describe("coupon terms", () => {
  test("a percentage off is told as 折 in Chinese", () => {
    expect(zhe("20.00")).toBe("8");
    expect(zhe("15")).toBe("8.5");
    expect(zhe("25.5")).toBe("7.45");
    expect(zhe("5.00")).toBe("9.5");
  });

  test("简体中文: 满100减20, 立减¥50, 8折, 满¥200打8.5折", async () => {
    await setLocale("zh-CN");
    expect(couponTerms(fixed)).toBe("满100减20");
    expect(couponTerms(fixedNoMinimum)).toBe("立减¥50");
    expect(couponTerms(percent)).toBe("8折");
    expect(couponTerms(percentOver)).toBe("满¥200打8.5折");
    expect([couponHeadline(fixed), couponCondition(fixed)]).toEqual(["¥20", "满¥100可用"]);
    expect([couponHeadline(percent), couponCondition(percent)]).toEqual(["8折", "无门槛"]);
  });

  test("English: ¥20 off orders over ¥100, 20% off", async () => {
    await setLocale("en");
    expect(couponTerms(fixed)).toBe("¥20 off orders over ¥100");
    expect(couponTerms(fixedNoMinimum)).toBe("¥50 off, no minimum spend");
    expect(couponTerms(percent)).toBe("20% off");
    expect(couponTerms(percentOver)).toBe("15% off orders over ¥200");
    expect([couponHeadline(fixed), couponCondition(fixed)]).toEqual(["¥20 off", "On orders over ¥100"]);
  });
});

describe("API errors, told in the buyer's language", () => {
  const refusal = (code: ApiErrorCode, details: unknown = null, message = "Server words.") => new ApiError(422, code, message, details);

  test("known codes map to messages in both languages, with numbers from the details", async () => {
    await setLocale("zh-CN");
    expect(errorText(refusal("coupon_sold_out"))).toBe("这张券已经抢光了。");
    expect(errorText(refusal("insufficient_points", { balance: 120 }))).toBe("积分不足：你只有 120 积分。");
    expect(errorText(new ApiError(0, NETWORK_ERROR, "x"))).toBe("连不上服务器，请检查网络后重试。");
    expect(errorText(new ApiError(502, "http_502", "x"))).toBe("服务器返回了错误（HTTP 502），请稍后再试。");
    expect(errorText(refusal("validation_error", [{ loc: ["body", "password"], msg: "too short", type: "password_policy" }]))).toContain("密码太弱");
    await setLocale("en");
    expect(errorText(refusal("coupon_sold_out"))).toBe("That coupon is sold out.");
    expect(errorText(refusal("points_exceed_limit", { max_points: 3780 }))).toBe("At most 3780 points can be used on this order.");
  });

  test("a code this app does not know: the server's words in English, a plain apology in Chinese", async () => {
    // A server newer than the page can answer a code missing from its schema.d.ts.
    const newCode = "brand_new_code" as ErrorCode;
    await setLocale("en");
    expect(errorText(refusal(newCode))).toBe("Server words.");
    await setLocale("zh-CN");
    expect(errorText(refusal(newCode))).toBe("出了点问题，请稍后再试。");
  });

  test("every error code the API declares has a message in both languages", () => {
    // The `*ErrorCode` enums of schema.d.ts, generated from the backend's OpenAPI schema, whose
    // enums tests/test_error_codes.py holds equal to the backend's (`npm run check:schema` keeps
    // this file in step with it).
    const schema = readFileSync(join(__dirname, "../../src/api/schema.d.ts"), "utf8");
    const enums = [...schema.matchAll(/^ *(\w+ErrorCode): ((?:"[a-z_]+"(?: \| )?)+);$/gm)];
    expect(enums.map((match) => match[1])).toEqual(expect.arrayContaining(["BillingErrorCode", "CoreErrorCode", "OrderErrorCode"]));
    const codes = enums.flatMap((match) => [...match[2].matchAll(/"([a-z_]+)"/g)].map((code) => code[1]));
    expect(codes.length).toBeGreaterThan(40);
    for (const code of codes) {
      expect(zhCN.errors, code).toHaveProperty(code);
      expect(en.errors, code).toHaveProperty(code);
    }
    // The same, checked by vue-tsc (`npm run typecheck`) against the ErrorCode type.
    zhCN.errors satisfies Record<ErrorCode, unknown>;
    en.errors satisfies Record<ErrorCode, unknown>;
  });

  test("error codes are typed: a code the API does not declare fails typecheck", () => {
    const error = new ApiError(409, "already_in_cart", "x");
    // @ts-expect-error -- "already_in_kart" is no code of the API, so vue-tsc refuses the comparison
    // (and would report this directive unused if ApiError.code were a plain string again).
    expect(error.code === "already_in_kart").toBe(false);
    // @ts-expect-error -- nor can an ApiError be made with one.
    expect(new ApiError(409, "already_in_kart", "x").code).toBe("already_in_kart");
    expect(error.code === "already_in_cart").toBe(true);
  });
});

describe("the language choice", () => {
  test("is remembered, and sets <html lang>", async () => {
    const storage = memoryStorage();
    expect(initialLocale(storage)).toBe("zh-CN");
    await setLocale("en", storage);
    expect(storage.getItem(LOCALE_KEY)).toBe("en");
    expect(document.documentElement.lang).toBe("en");
    expect(initialLocale(storage)).toBe("en");
    await setLocale("zh-CN", storage);
    expect(document.documentElement.lang).toBe("zh-CN");
    expect(initialLocale(memoryStorage({ [LOCALE_KEY]: "fr" }))).toBe("zh-CN");
  });
});

describe("message files", () => {
  function* sources(dir: string): Generator<string> {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) yield* sources(path);
      else if (/\.(vue|ts)$/.test(name) && !path.includes("/locales/")) yield path;
    }
  }
  // (Messages come precompiled here, as in the build: a key that exists holds a function, not a string.)
  const lookup = (messages: object, key: string) => key.split(".").reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], messages);

  test("every key the pages ask for exists in both languages", () => {
    const missing: string[] = [];
    for (const file of sources(join(__dirname, "../../src"))) {
      const text = readFileSync(file, "utf8");
      for (const match of text.matchAll(/\b(?:\$?t|te)\(\s*["']([a-zA-Z]+(?:\.[a-zA-Z_]+)+)["']/g)) {
        for (const [name, messages] of [["zh-CN", zhCN], ["en", en]] as const) {
          if (lookup(messages, match[1]) === undefined) missing.push(`${name}: ${match[1]} (${file.replace(/^.*\/src\//, "src/")})`);
        }
      }
    }
    expect(missing).toEqual([]);
  });
});

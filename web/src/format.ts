// Display helpers for the current language. Money stays the API's decimal string: Intl formats the
// string itself (exactly, no float in between), and nothing here adds or converts amounts.
import type { Schemas } from "@/api/client";
import { i18n, INTL_LOCALE, locale } from "@/i18n";

type CouponLike = Pick<Schemas["UserCouponOut"], "kind" | "amount_off" | "percent_off" | "threshold">;
type Decimal = `${number}`;

const formats = new Map<string, Intl.NumberFormat | Intl.DateTimeFormat>();
function cached<T extends Intl.NumberFormat | Intl.DateTimeFormat>(key: string, make: () => T): T {
  if (!formats.has(key)) formats.set(key, make());
  return formats.get(key) as T;
}

const isWhole = (value: string) => /^-?\d+(\.0+)?$/.test(value);
const isZero = (value: string) => /^0+(\.0+)?$/.test(value);

/** "199.00" -> "¥199.00" (both languages; `whole` drops ".00" from whole amounts: "¥20"). */
export function formatMoney(value: string, { whole = false } = {}): string {
  const digits = whole && isWhole(value) ? 0 : 2;
  const tag = INTL_LOCALE[locale.value];
  const format = cached(`money:${tag}:${digits}`, () =>
    new Intl.NumberFormat(tag, { style: "currency", currency: "CNY", currencyDisplay: "narrowSymbol", minimumFractionDigits: digits }),
  );
  return format.format(value as Decimal);
}

function dateFormat(options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const tag = INTL_LOCALE[locale.value];
  return cached(`date:${tag}:${JSON.stringify(options)}`, () => new Intl.DateTimeFormat(tag, options));
}

export function formatDateTime(iso: string | null | undefined): string {
  return iso ? dateFormat({ dateStyle: "medium", timeStyle: "short" }).format(new Date(iso)) : "";
}

export function formatDate(iso: string | null | undefined): string {
  return iso ? dateFormat({ dateStyle: "medium" }).format(new Date(iso)) : "";
}

/** "20.00" -> "20", "12.50" -> "12.5": trims a decimal string, no float in between. */
export function trimDecimal(value: string): string {
  return value.includes(".") ? value.replace(/\.?0+$/, "") : value;
}

/** A percentage off as a Chinese discount: 20 -> "8" (8折), 15 -> "8.5", 25.5 -> "7.45". */
export function zhe(percentOff: string): string {
  const [whole, fraction = ""] = percentOff.split(".");
  const hundredths = Number(whole) * 100 + Number(fraction.padEnd(2, "0").slice(0, 2));
  const left = 10000 - hundredths; // what is paid, in hundredths of a percent
  return trimDecimal(`${Math.floor(left / 1000)}.${String(left % 1000).padStart(3, "0")}`);
}

function couponParams(coupon: CouponLike) {
  return {
    amount: formatMoney(coupon.amount_off ?? "0", { whole: true }),
    threshold: formatMoney(coupon.threshold, { whole: true }),
    // 满100减20 reads without the currency sign.
    thresholdPlain: trimDecimal(coupon.threshold),
    amountPlain: trimDecimal(coupon.amount_off ?? "0"),
    percent: trimDecimal(coupon.percent_off ?? "0"),
    zhe: zhe(coupon.percent_off ?? "0"),
  };
}

/** The coupon's terms as one phrase: "满100减20", "8折" / "¥20 off orders over ¥100", "20% off". */
export function couponTerms(coupon: CouponLike): string {
  const { t } = i18n.global;
  const p = couponParams(coupon);
  const noThreshold = isZero(coupon.threshold);
  if (coupon.kind === "percent") return noThreshold ? t("coupon.percent", p) : t("coupon.percentThreshold", p);
  if (noThreshold) return t("coupon.fixedNoThreshold", p);
  return locale.value === "zh-CN" ? t("coupon.fixed", { ...p, threshold: p.thresholdPlain, amount: p.amountPlain }) : t("coupon.fixed", p);
}

/** The big figure on a coupon card: "¥20" / "8折", "¥20 off" / "20% off". */
export function couponHeadline(coupon: CouponLike): string {
  const { t } = i18n.global;
  return coupon.kind === "percent" ? t("coupon.headlinePercent", couponParams(coupon)) : t("coupon.headlineFixed", couponParams(coupon));
}

/** When the coupon applies: "满¥100可用" / "On orders over ¥100", or no minimum. */
export function couponCondition(coupon: CouponLike): string {
  const { t } = i18n.global;
  return isZero(coupon.threshold) ? t("coupon.noThreshold") : t("coupon.condition", couponParams(coupon));
}

/** "1:05:09" / "04:59" for a number of milliseconds left. */
export function formatRemaining(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mmss = `${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
  return h > 0 ? `${h}:${mmss}` : mmss;
}

export const STATUS_TAGS: Record<Schemas["OrderOut"]["status"], "warning" | "success" | "info" | "danger"> = {
  pending: "warning",
  paid: "success",
  cancelled: "info",
  partially_refunded: "warning",
  refunded: "danger",
};

/** A `next` query value that stays inside this app. */
export function safeNext(next: unknown, fallback = "/"): string {
  return typeof next === "string" && next.startsWith("/") && !next.startsWith("//") ? next : fallback;
}

/** 支付宝 / 微信支付, "Alipay" / "WeChat Pay". */
export function providerName(provider: Schemas["PlaceOrderIn"]["pay_type"]): string {
  const { t } = i18n.global;
  return provider === "wechat" ? t("payment.provider.wechat") : t("payment.provider.alipay");
}

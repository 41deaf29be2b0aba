// Display helpers. Money stays the API's decimal string; nothing here does arithmetic on it.
import type { Schemas } from "@/api/client";

type CouponLike = Pick<Schemas["UserCouponOut"], "kind" | "amount_off" | "percent_off" | "threshold">;

const dateTime = new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeStyle: "short" });
const dateOnly = new Intl.DateTimeFormat("en-GB", { dateStyle: "medium" });

export function formatDateTime(iso: string | null | undefined): string {
  return iso ? dateTime.format(new Date(iso)) : "";
}

export function formatDate(iso: string | null | undefined): string {
  return iso ? dateOnly.format(new Date(iso)) : "";
}

/** "20.00" -> "20", "12.50" -> "12.5": trims a decimal string, no float in between. */
export function trimDecimal(value: string): string {
  return value.includes(".") ? value.replace(/\.?0+$/, "") : value;
}

export function couponValue(coupon: CouponLike): string {
  if (coupon.kind === "percent") return `${trimDecimal(coupon.percent_off ?? "0")}% off`;
  return `¥${coupon.amount_off ?? "0.00"} off`;
}

export function couponCondition(coupon: CouponLike): string {
  return /^0+(\.0+)?$/.test(coupon.threshold) ? "No minimum spend" : `On orders from ¥${coupon.threshold}`;
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

export const STATUS_LABELS: Record<Schemas["OrderOut"]["status"], string> = {
  pending: "Awaiting payment",
  paid: "Paid",
  cancelled: "Cancelled",
  refunded: "Refunded",
};

export const STATUS_TAGS: Record<Schemas["OrderOut"]["status"], "warning" | "success" | "info" | "danger"> = {
  pending: "warning",
  paid: "success",
  cancelled: "info",
  refunded: "danger",
};

/** A `next` query value that stays inside this app. */
export function safeNext(next: unknown, fallback = "/"): string {
  return typeof next === "string" && next.startsWith("/") && !next.startsWith("//") ? next : fallback;
}

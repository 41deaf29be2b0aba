// What to tell the buyer about a failure, in their language: API error codes map to messages in
// the locale files (errors.<code>), with numbers from the envelope's details where they help.
// The server's own (English) message is shown only for a code this app does not know yet, and
// only in English.
import { ApiError, NETWORK_ERROR } from "@/api/client";
import { formatDateTime } from "@/format";
import { i18n, locale } from "@/i18n";

/** A lazily loaded page (or its CSS) could not be fetched: offline, or a deploy replaced it. */
export function isChunkLoadError(error: unknown): boolean {
  const message = error instanceof Error ? error.message : typeof error === "string" ? error : "";
  return /dynamically imported module|Importing a module script failed|Unable to preload CSS|Failed to load module script/i.test(message);
}

function numberDetail(error: ApiError, key: string): number | null {
  const value = (error.details as Record<string, unknown> | null)?.[key];
  return typeof value === "number" ? value : null;
}

function isPasswordPolicy(error: ApiError): boolean {
  return Array.isArray(error.details) && error.details.some((d) => (d as { type?: unknown })?.type === "password_policy");
}

export function errorText(error: unknown): string {
  const { t, te } = i18n.global;
  if (error instanceof ApiError) {
    if (error.code === NETWORK_ERROR) return t("errors.network");
    if (error.code === "insufficient_points") {
      const balance = numberDetail(error, "balance");
      return balance === null ? t("errors.insufficient_points_plain") : t("errors.insufficient_points", { balance });
    }
    if (error.code === "points_exceed_limit") {
      const max = numberDetail(error, "max_points");
      return max === null ? t("errors.points_exceed_limit_plain") : t("errors.points_exceed_limit", { max });
    }
    if (error.code === "refund_window_closed") {
      const until = (error.details as { refundable_until?: unknown } | null)?.refundable_until;
      if (typeof until === "string" && !Number.isNaN(Date.parse(until))) return t("errors.refund_window_closed_at", { time: formatDateTime(until) });
    }
    if (error.code === "username_taken") return t("errors.username_taken_plain");
    if (error.code === "validation_error" && isPasswordPolicy(error)) return t("errors.password_policy");
    if (/^http_\d+$/.test(error.code)) return t("errors.http", { status: error.status });
    const key = `errors.${error.code}`;
    if (te(key)) return t(key);
    return locale.value === "en" && error.message ? error.message : t("errors.unknown");
  }
  if (isChunkLoadError(error)) return t("errors.chunk");
  return t("errors.unknown");
}

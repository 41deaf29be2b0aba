// The app's languages: 简体中文 first (bundled), English second (loaded when chosen). The choice
// is kept in localStorage, and <html lang> follows it. Element Plus gets its own locale to match.
import { computed, shallowRef } from "vue";
import { createI18n } from "vue-i18n";
import type { Language } from "element-plus/es/locale";
import elementZhCn from "element-plus/es/locale/lang/zh-cn";
import zhCN from "@/locales/zh-CN";

export type MessageSchema = typeof zhCN;
export type Locale = "zh-CN" | "en";
export const LOCALES: readonly Locale[] = ["zh-CN", "en"];
export const DEFAULT_LOCALE: Locale = "zh-CN";
export const LOCALE_KEY = "shop.locale";

/** Intl's name for each locale: "en" is shown with a 24-hour clock and day-month-year dates. */
export const INTL_LOCALE: Record<Locale, string> = { "zh-CN": "zh-CN", en: "en-GB" };

export const i18n = createI18n<[MessageSchema], Locale, false>({
  legacy: false,
  locale: DEFAULT_LOCALE,
  fallbackLocale: DEFAULT_LOCALE,
  messages: { "zh-CN": zhCN } as Record<Locale, MessageSchema>,
  missingWarn: false,
  fallbackWarn: false,
});

const elementLocales = shallowRef<Partial<Record<Locale, Language>>>({ "zh-CN": elementZhCn });
const loaders: Record<Exclude<Locale, "zh-CN">, () => Promise<[MessageSchema, Language]>> = {
  en: () => Promise.all([import("@/locales/en").then((m) => m.default), import("element-plus/es/locale/lang/en").then((m) => m.default)]),
};

export const locale = computed<Locale>(() => i18n.global.locale.value);
/** Element Plus's strings (dialog buttons, empty states) for the current language. */
export const elementLocale = computed(() => elementLocales.value[locale.value] ?? elementZhCn);

export function isLocale(value: unknown): value is Locale {
  return typeof value === "string" && (LOCALES as readonly string[]).includes(value);
}

/** The stored choice, else 简体中文. */
export function initialLocale(storage: Storage | null): Locale {
  try {
    const stored = storage?.getItem(LOCALE_KEY);
    if (isLocale(stored)) return stored;
  } catch {
    /* storage blocked: the default */
  }
  return DEFAULT_LOCALE;
}

/** Loads the language if needed, switches to it, sets <html lang> and remembers the choice. */
export async function setLocale(next: Locale, storage: Storage | null = null): Promise<void> {
  if (next !== "zh-CN" && !i18n.global.availableLocales.includes(next)) {
    const [messages, element] = await loaders[next]();
    i18n.global.setLocaleMessage(next, messages);
    elementLocales.value = { ...elementLocales.value, [next]: element };
  }
  i18n.global.locale.value = next;
  if (typeof document !== "undefined") document.documentElement.lang = next;
  try {
    storage?.setItem(LOCALE_KEY, next);
  } catch {
    /* not remembered, still switched */
  }
}

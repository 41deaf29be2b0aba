// jsdom lacks these; the router and Element Plus call them.
window.scrollTo = () => undefined;
if (!("ResizeObserver" in window)) {
  (window as unknown as { ResizeObserver: unknown }).ResizeObserver = class {
    observe() {}
    unobserve() {}
    disconnect() {}
  };
}

// Pages are tested in English unless a test switches to 简体中文 (tests/unit/i18n.spec.ts); the
// locale is a module singleton, so every test starts from the same one.
import { beforeEach } from "vitest";
import { setLocale } from "@/i18n";

beforeEach(async () => {
  await setLocale("en");
});

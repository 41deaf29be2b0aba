import { defineConfig } from "vitest/config";

// The browser test: starts its own backend (embedded default: Postgres from the wheel, fresh temp VAR_DIR) serving the
// built app from web/dist, and drives Debian's Chromium through playwright-core.
export default defineConfig({
  test: {
    environment: "node",
    include: ["e2e/**/*.e2e.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});

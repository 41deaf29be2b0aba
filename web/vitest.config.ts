import { defineConfig, mergeConfig } from "vitest/config";
import viteConfig from "./vite.config.ts";

export default defineConfig((env) =>
  mergeConfig(viteConfig(env), {
    test: {
      environment: "jsdom",
      include: ["tests/unit/**/*.spec.ts"],
      setupFiles: ["tests/unit/setup.ts"],
      css: false,
      // Pages import Element Plus per component with its CSS (element-plus/es/.../style/css):
      // Vite must transform it, as in the build, instead of Node loading .css files.
      server: { deps: { inline: ["element-plus"] } },
    },
  }),
);

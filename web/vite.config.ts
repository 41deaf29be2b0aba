import { fileURLToPath, URL } from "node:url";
import vue from "@vitejs/plugin-vue";
import { defineConfig, loadEnv } from "vite";

// `npm run dev` serves the app on :5173 and proxies the API (and the demo pictures under
// /static) to a backend: VITE_BACKEND, default the `make run` address.
export default defineConfig(({ mode }) => {
  const env = loadEnv(mode, process.cwd(), "");
  const backend = env.VITE_BACKEND || "http://127.0.0.1:8000";
  return {
    plugins: [vue()],
    resolve: { alias: { "@": fileURLToPath(new URL("./src", import.meta.url)) } },
    server: {
      host: "127.0.0.1",
      port: 5173,
      proxy: { "/api": backend, "/static": backend },
    },
    build: {
      // Element Plus is installed whole; its chunk is large but cached (hashed names).
      chunkSizeWarningLimit: 1500,
    },
  };
});

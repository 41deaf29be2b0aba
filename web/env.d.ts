/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** Origin of the API when it is not the app's own, e.g. "https://shop-api.example.com". */
  readonly VITE_API_ORIGIN?: string;
}

interface ImportMeta {
  readonly env: ImportMetaEnv;
}

/** Element Plus's per-component stylesheets (side effects only). */
declare module "element-plus/es/components/*/style/css";

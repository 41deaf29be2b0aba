import { fileURLToPath, URL } from "node:url";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import VueI18nPlugin from "@intlify/unplugin-vue-i18n/vite";
import vue from "@vitejs/plugin-vue";
import { ElementPlusResolver } from "unplugin-vue-components/resolvers";
import Components from "unplugin-vue-components/vite";
import { defineConfig, loadEnv, type Plugin, type Rolldown } from "vite";

/** First load of any page (JS + CSS, gzip): the build fails above it. */
export const FIRST_LOAD_BUDGET_BYTES = 250_000;
const EL_COMPONENT = /element-plus\/es\/components\/([\w-]+)\//;
const COMPRESSIBLE = /\.(js|css|svg|html|json)$/;

const gzip = (bytes: Uint8Array) => gzipSync(bytes, { level: 9 });
const brotli = (bytes: Uint8Array) =>
  brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length } });
const bytesOf = (output: Rolldown.OutputChunk | Rolldown.OutputAsset) =>
  output.type === "chunk" ? Buffer.from(output.code) : Buffer.from(output.source);
const kB = (n: number) => `${(n / 1000).toFixed(1)} kB`;

/**
 * For every page (a route component in src/views), what a first visit must fetch before the page
 * shows: the entry and the page's chunk, their static imports, and the CSS they import. Reported
 * per page; the build stops, before writing anything, when one is over the budget.
 */
function firstLoadBudget(budget: number): Plugin {
  return {
    name: "shop:first-load-budget",
    apply: "build",
    generateBundle: {
      // After Vite's own generateBundle work: the chunks' code is final then.
      order: "post",
      handler(_options, bundle) {
        const chunks = Object.values(bundle).filter((o): o is Rolldown.OutputChunk => o.type === "chunk");
        const byFile = new Map(chunks.map((c) => [c.fileName, c]));
        const needs = (chunk: Rolldown.OutputChunk, files: Set<string>): Set<string> => {
          if (files.has(chunk.fileName)) return files;
          files.add(chunk.fileName);
          chunk.viteMetadata?.importedCss.forEach((css) => files.add(css));
          chunk.imports.forEach((file) => byFile.has(file) && needs(byFile.get(file)!, files));
          return files;
        };
        const entry = chunks.find((c) => c.isEntry)!;
        const pages = chunks.filter((c) => c.isDynamicEntry && /\/src\/views\/\w+\.vue$/.test(c.facadeModuleId ?? ""));
        const rows = [
          { name: "(entry only)", files: needs(entry, new Set()) },
          ...pages.map((page) => ({ name: page.facadeModuleId!.replace(/^.*\/views\//, ""), files: needs(page, needs(entry, new Set())) })),
        ];
        const sizes = new Map<string, { gzip: number; br: number }>();
        const sizeOf = (file: string) => {
          if (!sizes.has(file)) {
            const bytes = bytesOf(bundle[file]);
            sizes.set(file, { gzip: gzip(bytes).length, br: brotli(bytes).length });
          }
          return sizes.get(file)!;
        };
        const totals = rows.map(({ name, files }) => ({
          name,
          files: files.size,
          gzip: [...files].reduce((sum, file) => sum + sizeOf(file).gzip, 0),
          br: [...files].reduce((sum, file) => sum + sizeOf(file).br, 0),
        }));
        console.log(`\nfirst load per page, JS + CSS (budget ${kB(budget)} gzip):`);
        for (const row of totals) {
          console.log(`  ${row.name.padEnd(24)} ${kB(row.gzip).padStart(9)} gzip ${kB(row.br).padStart(9)} br  (${row.files} files)`);
        }
        if (process.env.BUDGET_DETAIL) {
          // BUDGET_DETAIL=1 npm run build: the largest modules of the first page's chunks.
          const modules = [...rows[0].files]
            .flatMap((file) => (bundle[file].type === "chunk" ? Object.entries((bundle[file] as Rolldown.OutputChunk).modules) : []))
            .map(([id, info]) => [id.replace(/^.*node_modules\//, "").replace(/^.*\/src\//, "src/"), info.renderedLength] as const)
            .sort((a, b) => b[1] - a[1]);
          console.log(modules.slice(0, 30).map(([id, length]) => `    ${kB(length).padStart(9)}  ${id}`).join("\n"));
        }
        const worst = totals.reduce((a, b) => (b.gzip > a.gzip ? b : a));
        if (worst.gzip > budget) {
          this.error(`first load of ${worst.name} is ${kB(worst.gzip)} gzip, over the ${kB(budget)} budget: import less up front`);
        }
      },
    },
  };
}

/** Emits <file>.br and <file>.gz beside each text asset: WhiteNoise serves the one the browser accepts. */
function precompress(): Plugin {
  return {
    name: "shop:precompress",
    apply: "build",
    generateBundle: {
      order: "post",
      handler(_options, bundle) {
        for (const output of Object.values(bundle)) {
          if (!COMPRESSIBLE.test(output.fileName)) continue;
          const bytes = bytesOf(output);
          for (const [suffix, compress] of [[".br", brotli], [".gz", gzip]] as const) {
            const packed = compress(bytes);
            // A variant that saves under 5% is not worth a file.
            if (packed.length < bytes.length * 0.95) this.emitFile({ type: "asset", fileName: output.fileName + suffix, source: packed });
          }
        }
      },
    },
  };
}

// `npm run dev` serves the app on :5173 and proxies the API (and the demo pictures under
// /static) to a backend: VITE_BACKEND, default the `make run` address.
export default defineConfig(({ mode }) => {
  const env = loadEnv(mode, process.cwd(), "");
  const backend = env.VITE_BACKEND || "http://127.0.0.1:8000";
  return {
    plugins: [
      vue(),
      // Element Plus on demand: each <el-*> a template uses is imported with its own CSS, so a
      // page ships only the components it shows (scripts import ElMessage & co. from src/ui).
      Components({ dirs: [], dts: false, resolvers: [ElementPlusResolver({ importStyle: "css" })] }),
      // Messages are compiled at build time, so the app ships vue-i18n's runtime without its
      // message compiler.
      VueI18nPlugin({
        include: [fileURLToPath(new URL("./src/locales/**", import.meta.url))],
        dropMessageCompiler: true,
      }),
      firstLoadBudget(FIRST_LOAD_BUDGET_BYTES),
      precompress(),
    ],
    resolve: { alias: { "@": fileURLToPath(new URL("./src", import.meta.url)) } },
    server: {
      host: "127.0.0.1",
      port: 5173,
      proxy: { "/api": backend, "/static": backend },
    },
    build: {
      // The plugin above reports the first load per page, compressed.
      reportCompressedSize: false,
      rolldownOptions: {
        output: {
          // Element Plus's per-component style modules are all called css.mjs: name their chunks
          // after the component, so the build output (and the budget report) says what they hold.
          // The QR code library (loaded when a WeChat Pay code is first drawn) would be "browser".
          chunkFileNames: (chunk) => {
            const component = chunk.name === "css" ? chunk.moduleIds.map((id) => id.match(EL_COMPONENT)?.[1]).find(Boolean) : undefined;
            if (chunk.moduleIds.some((id) => id.includes("/node_modules/qrcode/"))) return "assets/qrcode-[hash].js";
            return `assets/${component ? `el-${component}` : "[name]"}-[hash].js`;
          },
        },
      },
    },
  };
});

#!/usr/bin/env node
/**
 * Builds each service into one ES module with esbuild: services/<name>/dist/main.mjs plus its
 * source map. Images and `make bench` run the bundle (no TypeScript type stripping at start, one
 * file to compile instead of a module graph: less memory, faster ready); `make dev` keeps running
 * the .ts sources. Stack traces still name the TypeScript files and lines: the images start Node
 * with --enable-source-maps.
 *
 *   node scripts/bundle-services.ts [service...]   default: every services/<name>/src/main.ts
 *
 * The bundle evaluates the platform's telemetry registration first, then the service's main.ts,
 * the order `node --import @meshwork/platform/telemetry-register.ts .../main.ts` gives the
 * sources. Native addons stay outside (they are loaded from node_modules next to the bundle),
 * and so do modules that are loaded by file name at run time (pino's pretty printer runs in a
 * worker thread).
 */
import fs from "node:fs";
import path from "node:path";
import { build, type Plugin } from "esbuild";

const ROOT = path.resolve(import.meta.dirname, "..");

/** Loaded from node_modules at run time, not bundled. */
export const EXTERNAL = [
  // native addons
  "better-sqlite3",
  "@node-rs/argon2",
  "pg-native",
  // run in a worker thread by file name
  "pino-pretty",
  "thread-stream",
];

export function bundlePath(service: string): string {
  return path.join(ROOT, "services", service, "dist", "main.mjs");
}

export function allServices(): string[] {
  return fs
    .readdirSync(path.join(ROOT, "services"))
    .filter((name) => fs.existsSync(path.join(ROOT, "services", name, "src", "main.ts")))
    .sort();
}

export async function bundleService(service: string): Promise<{ file: string; bytes: number }> {
  const outfile = bundlePath(service);
  await build({
    stdin: {
      // Dynamic imports keep the order: telemetry is registered before any tracer or meter is made.
      contents: `await import("@meshwork/platform/telemetry-register.ts");\nawait import("./services/${service}/src/main.ts");\n`,
      resolveDir: ROOT,
      sourcefile: "bundle-entry.ts",
      loader: "ts",
    },
    bundle: true,
    platform: "node",
    target: "node24",
    format: "esm",
    outfile,
    external: EXTERNAL,
    plugins: [filesBesideSources(path.dirname(outfile))],
    // Sources in the map are relative to the bundle, so traces name services/<name>/src/*.ts.
    sourcemap: "linked",
    legalComments: "none",
    logLevel: "warning",
    // CommonJS dependencies inside an ES module still call require() and read __dirname.
    banner: {
      js: [
        'import { createRequire as __meshworkCreateRequire } from "node:module";',
        'import { fileURLToPath as __meshworkFileURLToPath } from "node:url";',
        'import { dirname as __meshworkDirname } from "node:path";',
        "const require = __meshworkCreateRequire(import.meta.url);",
        "const __filename = __meshworkFileURLToPath(import.meta.url);",
        "const __dirname = __meshworkDirname(__filename);",
      ].join("\n"),
    },
  });
  return { file: outfile, bytes: fs.statSync(outfile).size };
}

/**
 * Sources that read a file next to themselves (`new URL("./name", import.meta.url)`, e.g.
 * identity's common-password list) would look beside the bundle instead: copy each such file into
 * dist/files/ and point the URL there.
 */
function filesBesideSources(outdir: string): Plugin {
  const pattern = /new URL\((["'])\.\/([^"'/]+)\1, import\.meta\.url\)/g;
  return {
    name: "files-beside-sources",
    setup(esbuild) {
      esbuild.onLoad({ filter: /\/services\/[^/]+\/src\/.*\.ts$/ }, (args) => {
        const source = fs.readFileSync(args.path, "utf8");
        if (!source.includes("import.meta.url")) return undefined;
        const contents = source.replace(pattern, (_match, _quote: string, name: string) => {
          fs.mkdirSync(path.join(outdir, "files"), { recursive: true });
          fs.copyFileSync(path.join(path.dirname(args.path), name), path.join(outdir, "files", name));
          return `new URL(${JSON.stringify(`./files/${name}`)}, import.meta.url)`;
        });
        return { contents, loader: "ts" };
      });
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const wanted = process.argv.slice(2);
  for (const service of wanted.length > 0 ? wanted : allServices()) {
    const started = performance.now();
    const { file, bytes } = await bundleService(service);
    console.log(`bundled ${path.relative(ROOT, file)} (${(bytes / 1024).toFixed(0)} KiB) in ${(performance.now() - started).toFixed(0)} ms`);
  }
}

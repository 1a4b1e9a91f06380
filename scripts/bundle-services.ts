#!/usr/bin/env node
/**
 * Builds each service into one ES module with esbuild: services/<name>/dist/main.mjs plus its
 * source map. Images and `make bench` run the bundle (no TypeScript type stripping at start, one
 * file to compile instead of a module graph: less memory, faster ready); `make dev` keeps running
 * the .ts sources. Stack traces still name the TypeScript files and lines: the bundle maps its own
 * frames through its source map, read on the first trace (services/platform/src/stack-traces.ts).
 *
 *   node scripts/bundle-services.ts [name...]   default: every services/<name>/src/main.ts
 *
 * A name may also be one of the two programs beside the services (APPS): the console's server
 * (console/dist-server/server.mjs) and the load generator (loadgen/dist/main.mjs). Their images
 * need no node_modules at all: everything they import is pure JavaScript and inside the bundle.
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
  // Imported only for a postgres:// DATABASE_URL (db/database.ts): loaded from node_modules then,
  // so a SQLite service neither parses nor holds the driver (92 KiB of the bundle).
  "pg",
  // run in a worker thread by file name
  "pino-pretty",
  "thread-stream",
];

/** Programs that are not services but ship as images too: entry point and bundle, from the root. */
export const APPS: Record<string, { entry: string; outfile: string }> = {
  console: { entry: "console/server.ts", outfile: "console/dist-server/server.mjs" },
  loadgen: { entry: "loadgen/src/main.ts", outfile: "loadgen/dist/main.mjs" },
};

/** The longest line the minified bundle may have, in characters (see `lineLimit` below). */
export const BUNDLE_LINE_LIMIT = 200;

export function bundlePath(service: string): string {
  return path.join(ROOT, "services", service, "dist", "main.mjs");
}

export function allServices(): string[] {
  return fs
    .readdirSync(path.join(ROOT, "services"))
    .filter((name) => fs.existsSync(path.join(ROOT, "services", name, "src", "main.ts")))
    .sort();
}

export interface BundleOptions {
  /**
   * Keep esbuild's readable layout (one module after another, each under a `// <path>` comment):
   * `BENCH_PROFILE=1` asks for it so that bench/profile-summary.ts can name the dependency behind
   * each frame. Otherwise whitespace and comments are dropped (names are kept): V8 holds a
   * module's whole source text for as long as the process runs (lazy compilation,
   * Function.prototype.toString), and a few non-Latin-1 characters in dependencies' comments made
   * it store presence's 3.7 MB bundle at two bytes a character, 7 MiB of its idle heap; minified,
   * the text is 2.4 MB (docs/performance.md). Meshwork's own frames are still mapped to the
   * TypeScript by the source map; a dependency's frame names a column of the bundle's long lines.
   */
  readable?: boolean;
}

export async function bundleService(service: string, options: BundleOptions = {}): Promise<{ file: string; bytes: number }> {
  return bundle(bundlePath(service), options, {
    // Stack traces are mapped to the TypeScript from the first line on, the map read only when a
    // trace is formatted (platform stack-traces.ts). Dynamic imports keep the order: telemetry is
    // registered before any tracer or meter is made.
    contents: [
      'import { mapStackTracesLazily } from "@meshwork/platform/stack-traces.ts";',
      "mapStackTracesLazily(import.meta.url);",
      'await import("@meshwork/platform/telemetry-register.ts");',
      `await import("./services/${service}/src/main.ts");`,
      "",
    ].join("\n"),
    resolveDir: ROOT,
    sourcefile: "bundle-entry.ts",
    loader: "ts",
  });
}

export async function bundleApp(name: string): Promise<{ file: string; bytes: number }> {
  const app = APPS[name];
  if (!app) throw new Error(`${name} is neither a service (services/${name}/src/main.ts) nor one of ${Object.keys(APPS).join(", ")}`);
  return bundle(path.join(ROOT, app.outfile), {}, { contents: `await import("./${app.entry}");\n`, resolveDir: ROOT, sourcefile: "bundle-entry.ts", loader: "ts" });
}

async function bundle(outfile: string, options: BundleOptions, stdin: NonNullable<Parameters<typeof build>[0]["stdin"]>): Promise<{ file: string; bytes: number }> {
  await build({
    stdin,
    bundle: true,
    platform: "node",
    target: "node24",
    format: "esm",
    outfile,
    external: EXTERNAL,
    plugins: [filesBesideSources(path.dirname(outfile)), englishOnlyZod(), asciiDependencies()],
    // Sources in the map are relative to the bundle, so traces name services/<name>/src/*.ts.
    // Their text is not needed for that (and not in the image): only the mappings are kept.
    sourcemap: "linked",
    sourcesContent: false,
    legalComments: "none",
    minifyWhitespace: !options.readable,
    // Short lines: an uncaught exception prints the source line it was thrown on (V8's message,
    // not the mapped trace), which on a whitespace-minified bundle would be tens of kilobytes.
    lineLimit: options.readable ? undefined : BUNDLE_LINE_LIMIT,
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
  keepOwnMappings(`${outfile}.map`);
  const text = fs.readFileSync(outfile, "utf8");
  const at = text.search(/[^\x00-\x7f]/);
  if (at >= 0) {
    throw new Error(`${path.relative(ROOT, outfile)} is not ASCII-only at character ${at}: ${JSON.stringify(text.slice(Math.max(0, at - 60), at + 20))} (see asciiDependencies)`);
  }
  return { file: outfile, bytes: fs.statSync(outfile).size };
}

/**
 * Whoever maps a frame (platform stack-traces.ts, or Node with --enable-source-maps) parses the
 * module's whole source map and keeps it:
 * for a bundle whose map also covers every dependency that was ~95 MiB of a service's idle RSS
 * (measured: 221 MiB with the full map, 126 MiB without). Stack frames inside dependencies then
 * point at the bundle itself, which is fine: what a reader needs is the TypeScript of Meshwork.
 * So the mappings of sources under node_modules are dropped (Source Map v3: per generated line,
 * comma-separated segments of base64 VLQ fields, relative to the previous segment).
 */
export function keepOwnMappings(mapFile: string): void {
  const map = JSON.parse(fs.readFileSync(mapFile, "utf8")) as { sources: string[]; names: string[]; mappings: string };
  const foreign = map.sources.map((source) => source.includes("node_modules/"));
  const previous = [0, 0, 0, 0]; // source, line, column, name: relative across the whole file
  const written = [0, 0, 0, 0];
  const lines = map.mappings.split(";").map((line) => {
    let column = 0;
    let writtenColumn = 0;
    const kept: string[] = [];
    for (const segment of line ? line.split(",") : []) {
      const fields = decodeVlq(segment);
      column += fields[0]!;
      if (fields.length < 4) continue; // a generated position with no source: nothing to name
      for (let i = 0; i < 3; i++) previous[i] = previous[i]! + fields[i + 1]!;
      if (fields.length === 5) previous[3] = previous[3]! + fields[4]!;
      if (foreign[previous[0]!]) continue;
      const out = [column - writtenColumn, previous[0]! - written[0]!, previous[1]! - written[1]!, previous[2]! - written[2]!];
      writtenColumn = column;
      for (let i = 0; i < 3; i++) written[i] = previous[i]!;
      if (fields.length === 5) {
        out.push(previous[3]! - written[3]!);
        written[3] = previous[3]!;
      }
      kept.push(encodeVlq(out));
    }
    return kept.join(",");
  });
  map.mappings = lines.join(";");
  fs.writeFileSync(mapFile, JSON.stringify(map));
}

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

function decodeVlq(segment: string): number[] {
  const values: number[] = [];
  let value = 0;
  let shift = 0;
  for (const char of segment) {
    const digit = BASE64.indexOf(char);
    value += (digit & 31) << shift;
    if (digit & 32) {
      shift += 5;
      continue;
    }
    values.push(value & 1 ? -(value >>> 1) : value >>> 1);
    value = 0;
    shift = 0;
  }
  return values;
}

function encodeVlq(values: number[]): string {
  let text = "";
  for (const value of values) {
    let rest = value < 0 ? (-value << 1) | 1 : value << 1;
    do {
      let digit = rest & 31;
      rest >>>= 5;
      if (rest > 0) digit |= 32;
      text += BASE64[digit];
    } while (rest > 0);
  }
  return text;
}

/**
 * zod's namespace object re-exports all of its 60-odd message locales (`z.locales.*`), so every
 * bundle carried them (about 300 KiB of source parsed and held at each start) although zod only
 * ever uses English, its default, which its schemas import directly. Meshwork never selects a
 * locale, so the namespace's locale index is replaced by one that has only English.
 */
function englishOnlyZod(): Plugin {
  return {
    name: "english-only-zod",
    setup(esbuild) {
      esbuild.onLoad({ filter: /\/node_modules\/zod\/v4\/locales\/index\.js$/ }, () => ({
        contents: 'export { default as en } from "./en.js";\n',
        loader: "js",
      }));
    },
  };
}

/**
 * V8 keeps a module's source text for the life of the process, and a single character above
 * U+00FF anywhere in it makes the whole text a two-byte string: presence's 2.5 MB bundle took 4.8
 * MiB instead of 2.4 MiB of its idle heap because of one `µ`. esbuild escapes non-ASCII characters
 * in strings, templates and identifiers (its default `charset: "ascii"`) but leaves them in
 * regular-expression literals (`/(ns|us|µs|ms)/` in @nats-io/jetstream), so dependencies are
 * rewritten as they load: every non-ASCII character becomes `\uXXXX` (a surrogate pair above
 * U+FFFF), which means the same character in a string, a template's cooked value and a regular
 * expression with or without the `u` flag. Only dependencies are rewritten: their mappings are
 * not kept (keepOwnMappings), while Meshwork's own columns must stay those of the TypeScript.
 * bundle() then refuses any output that is still not ASCII.
 */
function asciiDependencies(): Plugin {
  return {
    name: "ascii-dependencies",
    setup(esbuild) {
      esbuild.onLoad({ filter: /\/node_modules\/.*\.(c|m)?js$/ }, (args) => {
        const source = fs.readFileSync(args.path, "utf8");
        if (!/[^\x00-\x7f]/.test(source)) return undefined;
        return { contents: escapeNonAscii(source), loader: "js" };
      });
    },
  };
}

/**
 * Every non-ASCII character as a `\uXXXX` escape. A character that was itself escaped (`\µ`, an
 * odd run of backslashes before it) loses that backslash: `\u00b5` already is the escape.
 */
export function escapeNonAscii(source: string): string {
  return source.replace(/(\\*)([^\x00-\x7f])/gu, (_match, backslashes: string, char: string) => {
    const kept = backslashes.length % 2 === 1 ? backslashes.slice(1) : backslashes;
    let escaped = "";
    for (let i = 0; i < char.length; i++) escaped += `\\u${char.charCodeAt(i).toString(16).padStart(4, "0")}`;
    return kept + escaped;
  });
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
  const services = allServices();
  for (const name of wanted.length > 0 ? wanted : services) {
    const started = performance.now();
    const { file, bytes } = services.includes(name) ? await bundleService(name) : await bundleApp(name);
    console.log(`bundled ${path.relative(ROOT, file)} (${(bytes / 1024).toFixed(0)} KiB) in ${(performance.now() - started).toFixed(0)} ms`);
  }
}

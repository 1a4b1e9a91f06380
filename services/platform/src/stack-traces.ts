import fs from "node:fs";
import { SourceMap, type SourceMapPayload } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Stack traces of a bundled service name the TypeScript files and lines, with the source map read
 * only when a trace is first formatted. `node --enable-source-maps` does the same mapping but pays
 * for it at start: it scans the whole 2 MB bundle for line lengths as the module loads, and
 * pino's `getCallSites()` at logger creation then makes it parse the whole map, which stays
 * resident. Presence started alone used 395 against 475 ms of CPU to ready and idled at 86
 * against 91 MiB without it (four interleaved pairs, docs/performance.md).
 *
 * Every frame is formatted by V8's own CallSite (method, `new`, `async` and eval frames as Node
 * prints them); a frame inside `bundleUrl` gets its position replaced by the original one, the
 * rule Node applies (`SourceMap.findEntry` of the frame's 0-based line and column). Frames of
 * other files are left alone. When Node's own source maps are on (`--enable-source-maps`) this
 * does nothing, so the two never map a frame twice.
 */
export function mapStackTracesLazily(bundleUrl: string): void {
  if (process.sourceMapsEnabled) return;
  const bundleFile = fileURLToPath(bundleUrl);
  let map: SourceMap | null | undefined;
  const sourceMap = (): SourceMap | null => {
    if (map === undefined) map = readSourceMap(bundleFile);
    return map;
  };
  Error.prepareStackTrace = (error: unknown, callSites: NodeJS.CallSite[]): string => {
    const frames = callSites.map((site) => `\n    at ${site.getFileName() === bundleUrl ? mappedFrame(site, sourceMap()) : String(site)}`);
    return errorHeader(error) + frames.join("");
  };
}

function mappedFrame(site: NodeJS.CallSite, map: SourceMap | null): string {
  const text = String(site);
  const line = site.getLineNumber();
  const column = site.getColumnNumber();
  if (!map || line === null || column === null) return text;
  const entry = map.findEntry(line - 1, column - 1);
  if (!("originalSource" in entry)) return text;
  const at = `${site.getFileName()}:${line}:${column}`;
  return text.replace(at, `${entry.originalSource}:${entry.originalLine + 1}:${entry.originalColumn + 1}`);
}

/** `Name: message` as V8 and Node print it above the frames. */
function errorHeader(error: unknown): string {
  try {
    return Error.prototype.toString.call(error);
  } catch {
    return "<error>";
  }
}

/** The linked map beside the bundle (scripts/bundle-services.ts), its sources made absolute paths; null when missing or unreadable. */
function readSourceMap(bundleFile: string): SourceMap | null {
  try {
    const payload = JSON.parse(fs.readFileSync(`${bundleFile}.map`, "utf8")) as SourceMapPayload;
    const dir = path.dirname(bundleFile);
    return new SourceMap({ ...payload, sources: payload.sources.map((source) => path.resolve(dir, payload.sourceRoot ?? "", source)), sourceRoot: "" });
  } catch {
    return null;
  }
}

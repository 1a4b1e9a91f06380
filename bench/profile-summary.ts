/**
 * Summarises V8 CPU profiles (from BENCH_PROFILE=1, or any --cpu-prof output): self time by
 * package/area, the top functions by self time and by total time (self plus callees), so a missed
 * target can be explained with evidence. Frames in an esbuild bundle (services/<name>/dist/main.mjs,
 * as the bench runs them) are mapped back to their source file through the bundle's source map.
 * Usage: node bench/profile-summary.ts <file.cpuprofile | directory> [top N]
 */
import fs from "node:fs";
import { SourceMap, type SourceMapPayload } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface Node {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const [target, topArg] = process.argv.slice(2);
if (!target) {
  console.error("usage: node bench/profile-summary.ts <file.cpuprofile | directory> [top N]");
  process.exit(2);
}
const top = Number(topArg ?? 25);
const files = fs.statSync(target).isDirectory()
  ? fs.readdirSync(target, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".cpuprofile")).map((f) => path.join(target, f))
  : [target];

const sourceMaps = new Map<string, { map: SourceMap; dir: string; modules: { line: number; path: string }[] } | undefined>();
for (const file of files) summarise(file);

function summarise(file: string): void {
  const profile = JSON.parse(fs.readFileSync(file, "utf8")) as Profile;
  for (const node of profile.nodes) node.callFrame = original(node.callFrame);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    const fn = functionLabel(frame);
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    const area = areaOf(frame);
    byArea.set(area, (byArea.get(area) ?? 0) + us);
  }
  // Total time: each sample counts once for every distinct function on its stack (recursion once).
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const totalByFunction = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const frame = byId.get(at)!.callFrame;
      if (!frame.url) continue;
      seen.add(functionLabel(frame));
    }
    for (const fn of seen) totalByFunction.set(fn, (totalByFunction.get(fn) ?? 0) + us);
  }
  const idle = byFunction.get("(idle)") ?? 0;
  const busy = total - idle;
  const pct = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)}%`;
  console.log(`\n${file}\n  wall ${(total / 1e6).toFixed(1)} s, busy (not idle) ${(busy / 1e6).toFixed(1)} s`);
  console.log("  self time by area (share of busy time):");
  for (const [area, us] of [...byArea].filter(([a]) => a !== "(idle)").sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`    ${pct(us)}  ${area}`);
  console.log(`  top ${top} functions by self time:`);
  for (const [fn, us] of [...byFunction].filter(([f]) => f !== "(idle)").sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`    ${pct(us)}  ${fn}`);
  console.log(`  top ${top} functions by total time (self plus callees; JavaScript frames only):`);
  for (const [fn, us] of [...totalByFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`    ${pct(us)}  ${fn}`);
}

function functionLabel(frame: CallFrame): string {
  const where = frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : "";
  return `${frame.functionName || "(anonymous)"} ${where}`.trim();
}

/**
 * The frame as the bundle's source map places it: a service's own code at its .ts file and line.
 * The bundler drops the mappings of node_modules (scripts/bundle-services.ts), so those frames are
 * placed by the `// node_modules/<path>` comment esbuild writes before each module it inlines.
 */
function original(frame: CallFrame): CallFrame {
  if (!frame.url.startsWith("file://") || !frame.url.endsWith(".mjs")) return frame;
  if (!sourceMaps.has(frame.url)) {
    const file = fileURLToPath(frame.url);
    const mapFile = `${file}.map`;
    if (!fs.existsSync(mapFile)) sourceMaps.set(frame.url, undefined);
    else {
      const modules: { line: number; path: string }[] = [];
      fs.readFileSync(file, "utf8")
        .split("\n")
        .forEach((text, line) => {
          const comment = /^\/\/ ((?:node_modules|services|proto)\/\S+\.[cm]?[jt]s)$/.exec(text);
          if (comment) modules.push({ line, path: comment[1]! });
        });
      const map = new SourceMap(JSON.parse(fs.readFileSync(mapFile, "utf8")) as SourceMapPayload);
      sourceMaps.set(frame.url, { map, dir: path.dirname(file), modules });
    }
  }
  const found = sourceMaps.get(frame.url);
  if (!found) return frame;
  const entry = found.map.findEntry(frame.lineNumber, frame.columnNumber);
  if ("originalSource" in entry && entry.generatedLine === frame.lineNumber) {
    const source = entry.originalSource.startsWith("file://") ? fileURLToPath(entry.originalSource) : path.resolve(found.dir, entry.originalSource);
    return { ...frame, url: `file://${source}`, lineNumber: entry.originalLine, columnNumber: entry.originalColumn };
  }
  // The last module comment at or before the frame's line (binary search over ascending lines).
  let low = 0;
  let high = found.modules.length - 1;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (found.modules[middle]!.line <= frame.lineNumber) low = middle;
    else high = middle - 1;
  }
  const module = found.modules[low];
  if (!module || module.line > frame.lineNumber) return frame;
  // The line within the bundle is kept: it finds the function in dist/main.mjs.
  return { ...frame, url: `file:///bundle/${module.path}` };
}
function shortUrl(url: string): string {
  const clean = url.replace(/^file:\/\//, "");
  const nm = clean.lastIndexOf("node_modules/");
  if (nm >= 0) return clean.slice(nm + "node_modules/".length);
  const services = clean.indexOf("/services/");
  if (services >= 0) return clean.slice(services + 1);
  return clean.replace(/^.*\/work\/main\//, "");
}

/** A package (node_modules/<scope>/<name>), a service's own code, Node internals, or a V8 bucket. */
function areaOf(frame: Node["callFrame"]): string {
  const url = frame.url;
  if (!url) return frame.functionName.startsWith("(") ? frame.functionName : "(native/V8)";
  if (url.startsWith("node:")) return `node:${url.slice(5).split("/")[1] ?? url.slice(5)}`;
  const match = url.match(/node_modules\/((@[^/]+\/)?[^/]+)/g);
  if (match) return match.at(-1)!.replace("node_modules/", "");
  const service = url.match(/services\/([^/]+)\/src\/(.*)/);
  if (service) return `@meshwork/${service[1]} ${service[2]!.split("/").slice(0, -1).join("/") || ""}`.trim();
  return shortUrl(url);
}

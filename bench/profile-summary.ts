/**
 * Summarises V8 CPU profiles (from BENCH_PROFILE=1, or any --cpu-prof output): self time by
 * package/area and the top functions, so a missed target can be explained with evidence.
 * Usage: node bench/profile-summary.ts <file.cpuprofile | directory> [top N]
 */
import fs from "node:fs";
import path from "node:path";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
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

for (const file of files) summarise(file);

function summarise(file: string): void {
  const profile = JSON.parse(fs.readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    const where = frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : "";
    const fn = `${frame.functionName || "(anonymous)"} ${where}`.trim();
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    const area = areaOf(frame);
    byArea.set(area, (byArea.get(area) ?? 0) + us);
  }
  const idle = byFunction.get("(idle)") ?? 0;
  const busy = total - idle;
  const pct = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)}%`;
  console.log(`\n${file}\n  wall ${(total / 1e6).toFixed(1)} s, busy (not idle) ${(busy / 1e6).toFixed(1)} s`);
  console.log("  self time by area (share of busy time):");
  for (const [area, us] of [...byArea].filter(([a]) => a !== "(idle)").sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`    ${pct(us)}  ${area}`);
  console.log(`  top ${top} functions by self time:`);
  for (const [fn, us] of [...byFunction].filter(([f]) => f !== "(idle)").sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`    ${pct(us)}  ${fn}`);
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

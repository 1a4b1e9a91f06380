import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fmt, summarize, type Summary } from "./stats.ts";

export const RESULTS_DIR = path.resolve(import.meta.dirname, "../results");

/**
 * One figure of a benchmark: min/median/max over the runs, the baseline it is compared with (also
 * measured in this run, on this machine), their ratio and the target from issue 7. `better`
 * says which direction is good, so the ratio and the "met" column read the same way everywhere.
 */
export interface Metric {
  name: string;
  unit: string;
  better: "higher" | "lower";
  value: Summary;
  baseline?: { name: string; value: Summary };
  /** value.median / baseline.median. */
  ratio?: number;
  target?: { text: string; met: boolean };
  note?: string;
}

export interface BenchResult {
  name: string;
  title: string;
  startedAt: string;
  durationSeconds: number;
  machine: MachineInfo;
  settings: Record<string, unknown>;
  metrics: Metric[];
  notes: string[];
}

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  natsServer: string;
  h2load: string;
  kernel: string;
}

export function metric(
  name: string,
  unit: string,
  better: "higher" | "lower",
  values: number[],
  baseline?: { name: string; values: number[] },
  target?: (value: Summary, ratio: number | undefined) => { text: string; met: boolean },
): Metric {
  const value = summarize(values);
  const base = baseline ? { name: baseline.name, value: summarize(baseline.values) } : undefined;
  const ratio = base ? value.median / base.value.median : undefined;
  return { name, unit, better, value, baseline: base, ratio, target: target?.(value, ratio) };
}

let machine: MachineInfo | undefined;
export function machineInfo(natsBinary: string, h2loadBinary: string | undefined): MachineInfo {
  machine ??= {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    natsServer: tryRun(natsBinary, ["--version"]),
    h2load: h2loadBinary ? tryRun(h2loadBinary, ["--version"]).split("\n")[0] ?? "" : "not installed (fallback client)",
    kernel: os.release(),
  };
  return machine;
}

function tryRun(binary: string, args: string[]): string {
  try {
    return execFileSync(binary, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
  } catch {
    return "unknown";
  }
}

export function writeResult(result: BenchResult): string {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${result.name}.json`);
  fs.writeFileSync(file, JSON.stringify(result, null, 2) + "\n");
  return file;
}

const ORDER = ["signin", "pipeline", "rpc", "footprint"];

/** Rebuilds summary.md from every result file, so running one benchmark keeps the others' rows. */
export function writeSummary(): string {
  const results = fs
    .readdirSync(RESULTS_DIR)
    .filter((file) => file.endsWith(".json"))
    .map((file) => JSON.parse(fs.readFileSync(path.join(RESULTS_DIR, file), "utf8")) as BenchResult)
    .sort((a, b) => rank(a.name) - rank(b.name));
  const lines: string[] = [];
  const first = results[0];
  lines.push("# Meshwork benchmark summary", "");
  if (first) {
    const m = first.machine;
    lines.push(`Machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}; Node ${m.node}; ${m.natsServer}; ${m.h2load}.`, "");
  }
  lines.push("Each figure is min / **median** / max over the runs; the ratio is median / baseline median, both measured in the same run.", "");
  for (const result of results) lines.push(...table(result), "");
  const file = path.join(RESULTS_DIR, "summary.md");
  fs.writeFileSync(file, lines.join("\n"));
  return file;
}

export function table(result: BenchResult): string[] {
  const lines = [
    `## ${result.title} (\`${result.name}\`, ${result.startedAt}, ${Math.round(result.durationSeconds)} s)`,
    "",
    "| measurement | unit | min | median | max | baseline (median) | ratio | target | met |",
    "|---|---|---:|---:|---:|---|---:|---|:-:|",
  ];
  for (const m of result.metrics) {
    const base = m.baseline ? `${m.baseline.name}: ${fmt(m.baseline.value.median)}` : "";
    const ratio = m.ratio === undefined ? "" : `${m.ratio.toFixed(2)}x`;
    const met = m.target ? (m.target.met ? "yes" : "**no**") : "";
    lines.push(
      `| ${m.name} | ${m.unit} | ${fmt(m.value.min)} | **${fmt(m.value.median)}** | ${fmt(m.value.max)} | ${base} | ${ratio} | ${m.target?.text ?? ""} | ${met} |`,
    );
  }
  if (result.notes.length > 0) lines.push("", ...result.notes.map((note) => `- ${note}`));
  return lines;
}

function rank(name: string): number {
  const index = ORDER.indexOf(name);
  return index === -1 ? ORDER.length : index;
}

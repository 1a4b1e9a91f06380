import path from "node:path";
import type { BenchResult } from "./report.ts";

export interface BenchContext {
  /** Runs per measurement (at least 5). */
  runs: number;
  /** Scales every measured window; BENCH_QUICK=1 sets it to 0.4 for a smoke run. */
  timeScale: number;
  h2load: string | undefined;
  log(line: string): void;
  /** Directory for service CPU profiles when BENCH_PROFILE=1, else undefined. */
  profileDir: string | undefined;
}

export interface Benchmark {
  name: string;
  title: string;
  run(context: BenchContext): Promise<Omit<BenchResult, "machine" | "startedAt" | "durationSeconds" | "name" | "title">>;
}

/** NODE_OPTIONS that make a service write a V8 CPU profile when it exits (BENCH_PROFILE=1). */
export function profileEnv(context: BenchContext, label: string): NodeJS.ProcessEnv {
  if (!context.profileDir) return {};
  return { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${path.join(context.profileDir, label)}` };
}

/** Merges environments, concatenating NODE_OPTIONS instead of letting the last one win. */
export function mergeEnv(...envs: NodeJS.ProcessEnv[]): NodeJS.ProcessEnv {
  const merged: NodeJS.ProcessEnv = Object.assign({}, ...envs);
  const nodeOptions = envs.map((env) => env["NODE_OPTIONS"]).filter(Boolean);
  if (nodeOptions.length > 0) merged["NODE_OPTIONS"] = nodeOptions.join(" ");
  return merged;
}

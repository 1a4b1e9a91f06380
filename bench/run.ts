/**
 * `make bench` (all benchmarks) or `node bench/run.ts <name> [<name> ...]`.
 *
 * Every figure is min/median/max over BENCH_RUNS runs (default 5) with a baseline measured in the
 * same run on the same machine; results go to bench/results/<name>.json and summary.md.
 * Benchmarks report, they never fail on speed. Environment:
 *   BENCH_RUNS=n       runs per measurement (default 5)
 *   BENCH_QUICK=1      shorter windows and 2 runs, for a smoke test of the bench code itself
 *   BENCH_PROFILE=1    services write V8 CPU profiles to bench/results/profiles/<label>/
 *   BENCH_NO_INSTALL=1 never apt-get install h2load (use the built-in client when it is missing)
 *   BENCH_H2LOAD=0     use the built-in client even when h2load is there
 *   BENCH_RPC_MODES=a,b only these tracing modes in the rpc benchmark (off, default, otlp)
 */
import fs from "node:fs";
import path from "node:path";
import { footprint } from "./footprint.ts";
import { gate } from "./gate.ts";
import type { Benchmark, BenchContext } from "./lib/context.ts";
import { ensureH2load } from "./lib/load.ts";
import { machineInfo, RESULTS_DIR, table, writeResult, writeSummary } from "./lib/report.ts";
import { pipeline } from "./pipeline.ts";
import { rpc } from "./rpc.ts";
import { signin } from "./signin.ts";
import { natsServerBinary } from "../scripts/lib/system.ts";
import { allServices, bundleService } from "../scripts/bundle-services.ts";

const BENCHMARKS: Benchmark[] = [signin, pipeline, rpc, footprint, gate];

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !BENCHMARKS.some((bench) => bench.name === name));
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(", ")}; choose from ${BENCHMARKS.map((bench) => bench.name).join(", ")}`);
  process.exit(2);
}
const selected = wanted.length > 0 ? BENCHMARKS.filter((bench) => wanted.includes(bench.name)) : BENCHMARKS;
const quick = process.env["BENCH_QUICK"] === "1";
const log = (line: string) => process.stdout.write(line + "\n");
const profileDir = process.env["BENCH_PROFILE"] === "1" ? path.join(RESULTS_DIR, "profiles") : undefined;
const context: BenchContext = {
  runs: Math.max(1, Number(process.env["BENCH_RUNS"] ?? (quick ? 2 : 5))),
  timeScale: quick ? 0.4 : 1,
  h2load: ensureH2load(log),
  log,
  profileDir,
};
if (profileDir) fs.rmSync(profileDir, { recursive: true, force: true });
const machine = machineInfo(natsServerBinary(), context.h2load);
log(`meshwork bench: ${selected.map((bench) => bench.name).join(", ")}; ${context.runs} runs each; ${machine.cpus} CPUs, Node ${machine.node}`);

const started = performance.now();
// Services run from their esbuild bundles, as in the images: build them from the current sources
// (laid out readably when profiling, so that profile-summary.ts can name each frame's module).
for (const service of allServices()) await bundleService(service, { readable: profileDir !== undefined });
log(`bundled ${allServices().join(", ")} (scripts/bundle-services.ts)`);
for (const bench of selected) {
  log(`\n== ${bench.name}: ${bench.title}`);
  const benchStarted = performance.now();
  const startedAt = new Date().toISOString();
  const outcome = await bench.run(context);
  const result = {
    name: bench.name,
    title: bench.title,
    startedAt,
    durationSeconds: (performance.now() - benchStarted) / 1000,
    machine,
    ...outcome,
    settings: { runs: context.runs, quick, ...outcome.settings },
  };
  const file = writeResult(result);
  log(["", ...table(result), "", `wrote ${path.relative(process.cwd(), file)}`].join("\n"));
}
const summary = writeSummary();
log(`\nall done in ${((performance.now() - started) / 1000).toFixed(0)} s; summary in ${path.relative(process.cwd(), summary)}`);
process.exit(0);

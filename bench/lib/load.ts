import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { percentiles } from "./stats.ts";

export interface LoadResult {
  /** Completed requests per second in the measured window. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  ok: number;
  failed: number;
}

/**
 * A small closed-loop client: `concurrency` workers each call `call` back to back. The first
 * `warmupMs` are thrown away (JIT, connection setup, caches), then `durationMs` is measured.
 */
export async function closedLoop(options: {
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  call: () => Promise<unknown>;
}): Promise<LoadResult> {
  const latencies: number[] = [];
  let failed = 0;
  const start = performance.now();
  const measureFrom = start + options.warmupMs;
  const end = measureFrom + options.durationMs;
  let firstError: Error | undefined;
  const worker = async () => {
    while (performance.now() < end) {
      const began = performance.now();
      try {
        await options.call();
        const done = performance.now();
        if (began >= measureFrom && done <= end) latencies.push(done - began);
      } catch (error) {
        firstError ??= error as Error;
        if (began >= measureFrom) failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  if (latencies.length === 0 && firstError) throw firstError;
  const { p50, p99 } = percentiles(latencies);
  return { rps: latencies.length / (options.durationMs / 1000), p50Ms: p50, p99Ms: p99, ok: latencies.length, failed };
}

let h2loadPath: string | null | undefined;

/**
 * h2load from Debian's nghttp2-client. Installed with apt-get when missing and we may (root, apt
 * present); undefined when it cannot be had, and callers fall back to closedLoop.
 */
export function ensureH2load(log: (line: string) => void): string | undefined {
  if (h2loadPath !== undefined) return h2loadPath ?? undefined;
  if (process.env["BENCH_H2LOAD"] === "0") {
    log("BENCH_H2LOAD=0: using the built-in closed-loop client");
    h2loadPath = null;
    return undefined;
  }
  h2loadPath = which("h2load") ?? null;
  if (!h2loadPath && process.env["BENCH_NO_INSTALL"] !== "1" && process.getuid?.() === 0 && which("apt-get")) {
    log("h2load is missing: installing nghttp2-client with apt-get ...");
    for (const args of [["install", "-y", "-qq", "nghttp2-client"], ["update", "-qq"], ["install", "-y", "-qq", "nghttp2-client"]]) {
      try {
        execFileSync("apt-get", args, { stdio: "ignore", timeout: 180_000, env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
        if (args[0] === "install") break;
      } catch {
        // try the next step (an update, then the install again)
      }
    }
    h2loadPath = which("h2load") ?? null;
  }
  if (!h2loadPath) log("h2load unavailable: using the built-in closed-loop client");
  return h2loadPath ?? undefined;
}

function which(command: string): string | undefined {
  for (const dir of (process.env["PATH"] ?? "").split(path.delimiter)) {
    const candidate = path.join(dir, command);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface H2loadOptions {
  binary: string;
  url: string;
  headers: Record<string, string>;
  /** Request body (POST). */
  body: Uint8Array;
  clients: number;
  streamsPerClient: number;
  warmupSeconds: number;
  durationSeconds: number;
}

/**
 * Runs h2load for a fixed duration after a warm-up and reads latencies from its per-request log
 * (h2load itself prints only mean/sd). Requests whose HTTP status is not 200 count as failed; a
 * gRPC error would still be HTTP 200, so callers check the call once with a real client first.
 */
export async function h2load(options: H2loadOptions): Promise<LoadResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "meshwork-h2load-"));
  const bodyFile = path.join(dir, "body.bin");
  const logFile = path.join(dir, "requests.log");
  fs.writeFileSync(bodyFile, options.body);
  const args = [
    "-c", String(options.clients),
    "-m", String(options.streamsPerClient),
    "-t", "1",
    "-D", `${Math.round(options.durationSeconds * 1000)}ms`,
    `--warm-up-time=${Math.round(options.warmupSeconds * 1000)}ms`,
    "-d", bodyFile,
    `--log-file=${logFile}`,
    ...Object.entries(options.headers).flatMap(([name, value]) => ["-H", `${name}: ${value}`]),
    options.url,
  ];
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(options.binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    child.stdout.on("data", (chunk: Buffer) => (text += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (text += chunk.toString()));
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(text) : reject(new Error(`h2load exited with ${code}:\n${text}`))));
  });
  const rps = Number(output.match(/finished in [\d.]+\w+, ([\d.]+) req\/s/)?.[1] ?? NaN);
  const requests = output.match(/requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/);
  const done = Number(requests?.[3] ?? 0);
  // The log also holds warm-up requests; the measured ones are the last `done` rows by end time.
  const rows = fs
    .readFileSync(logFile, "utf8")
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => line.split("\t").map(Number) as [number, number, number]);
  const measured = rows.slice(Math.max(0, rows.length - done));
  const okLatencies = measured.filter((row) => row[1] === 200).map((row) => row[2] / 1000);
  fs.rmSync(dir, { recursive: true, force: true });
  if (!Number.isFinite(rps) || okLatencies.length === 0) throw new Error(`h2load measured nothing:\n${output}`);
  const { p50, p99 } = percentiles(okLatencies);
  return { rps, p50Ms: p50, p99Ms: p99, ok: okLatencies.length, failed: measured.length - okLatencies.length };
}

/** Five-byte gRPC frame header (no compression) before a message. */
export function grpcFrame(message: Uint8Array): Uint8Array {
  const frame = new Uint8Array(5 + message.length);
  new DataView(frame.buffer).setUint32(1, message.length);
  frame.set(message, 5);
  return frame;
}

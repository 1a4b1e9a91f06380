import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { freePort, SERVICES, spawnManaged, startNats, type ManagedProcess, type ServiceName } from "../scripts/lib/system.ts";
import { type Benchmark } from "./lib/context.ts";
import { closedLoop, grpcFrame, h2load } from "./lib/load.ts";
import { metric, type Metric } from "./lib/report.ts";
import { BENCH_ADMIN, BenchSystem, memoryOf } from "./lib/system.ts";

const POLL_MS = 5;
/**
 * What an idle service's RSS is made of: Node processes that only load part of the stack and
 * wait, measured together after 2 s. They explain the idle figures, they are not services.
 */
const PROBES = [
  { label: "node + type stripping of one .ts file", args: ["--import", "./bench/workers/idle.ts"] },
  { label: "node + import @meshwork/platform (the chassis, not started)", args: ["--import", "@meshwork/platform", "--import", "./bench/workers/idle.ts"] },
  {
    label: "same, with --optimize-for-size --max-semi-space-size=1",
    args: ["--optimize-for-size", "--max-semi-space-size=1", "--import", "@meshwork/platform", "--import", "./bench/workers/idle.ts"],
  },
];
const BARE_NODE = `require("node:http").createServer((q, s) => s.end("ok")).listen(Number(process.argv[1]), "127.0.0.1")`;

/**
 * 4. Footprint: for each run a fresh system in a fresh directory, started the way `make dev`
 * does (nats-server, then identity, then the other services together), timing each service from
 * spawn to its first 200 on /readyz (polled every 5 ms) and the whole system from the nats-server
 * spawn to the last readyz. Then VmRSS of each process after 2 s idle, and its peak while the
 * system is under mixed load (sign-ins at concurrency 8, GetOnlineCount by h2load, and the
 * events those sign-ins cause). Baseline: a bare `node -e` HTTP server, started and measured the
 * same way in the same run (Node's own floor for start time and memory).
 */
export const footprint: Benchmark = {
  name: "footprint",
  title: "Footprint: resident memory and time to ready",
  async run(context) {
    const ready: Record<string, number[]> = { system: [], bare: [], ...Object.fromEntries(SERVICES.map((s) => [s, []])) };
    const idle: Record<string, number[]> = { bare: [], nats: [], ...Object.fromEntries(SERVICES.map((s) => [s, []])) };
    const loaded: Record<string, number[]> = { nats: [], ...Object.fromEntries(SERVICES.map((s) => [s, []])) };
    const probes: number[][] = PROBES.map(() => []);
    for (let run = 1; run <= context.runs; run++) {
      const probed = await Promise.all(PROBES.map((probe) => probeRss(probe.args)));
      probed.forEach((rss, i) => probes[i]!.push(rss));
      const bare = await startBareNode();
      ready["bare"]!.push(bare.readyMs);
      const system = new BenchSystem({ services: [] });
      try {
        const started = performance.now();
        system.natsPort = await freePort();
        system.nats = await startNats({ port: system.natsPort, dataDir: path.join(system.dataDir, "nats") });
        for (const name of SERVICES) system.ports.set(name, { rpc: await freePort(), admin: await freePort() });
        const timed = async (name: ServiceName) => {
          const spawned = performance.now();
          const service = await system.startService(name, {}, false);
          await pollReady(`${system.adminUrl(name)}/readyz`, service);
          ready[name]!.push(performance.now() - spawned);
        };
        await timed("identity");
        await Promise.all(SERVICES.filter((name) => name !== "identity").map(timed));
        ready["system"]!.push(performance.now() - started);

        await sleep(2_000 * context.timeScale);
        idle["bare"]!.push(memoryOf(bare.process.child.pid!).rssMiB);
        idle["nats"]!.push(memoryOf(system.nats.child.pid!).rssMiB);
        for (const name of SERVICES) idle[name]!.push(memoryOf(system.pid(name)).rssMiB);

        const peaks = await underLoad(system, context.h2load, 3_000 * context.timeScale);
        for (const [name, peak] of Object.entries(peaks)) loaded[name]!.push(peak);
        context.log(
          `  run ${run}: ready ${SERVICES.map((s) => `${s} ${ready[s]!.at(-1)!.toFixed(0)} ms`).join(", ")}, system ${ready["system"]!.at(-1)!.toFixed(0)} ms (bare node ${bare.readyMs.toFixed(0)} ms); ` +
            `RSS idle/load MiB ${[...SERVICES, "nats"].map((s) => `${s} ${idle[s]!.at(-1)!.toFixed(0)}/${loaded[s]!.at(-1)!.toFixed(0)}`).join(", ")}`,
        );
      } finally {
        await bare.process.stop("SIGTERM");
        await system.stop();
      }
    }
    const metrics: Metric[] = [];
    for (const name of SERVICES) {
      metrics.push(
        metric(`${name} RSS idle`, "MiB", "lower", idle[name]!, { name: "bare node", values: idle["bare"]! }, (value) => ({ text: "< 100 MB", met: value.median * 1.048576 < 100 })),
        metric(`${name} RSS peak under load`, "MiB", "lower", loaded[name]!, { name: "bare node", values: idle["bare"]! }),
      );
    }
    PROBES.forEach((probe, i) => metrics.push(metric(`breakdown: ${probe.label}`, "MiB", "lower", probes[i]!, { name: "bare node", values: idle["bare"]! })));
    metrics.push(
      metric("nats-server RSS idle", "MiB", "lower", idle["nats"]!),
      metric("nats-server RSS peak under load", "MiB", "lower", loaded["nats"]!),
    );
    for (const name of SERVICES) metrics.push(metric(`${name} spawn to ready`, "ms", "lower", ready[name]!, { name: "bare node", values: ready["bare"]! }));
    metrics.push(
      metric("whole system start to ready", "ms", "lower", ready["system"]!, { name: "bare node", values: ready["bare"]! }, (value) => ({
        text: "< 5 s",
        met: value.median < 5_000,
      })),
    );
    return {
      settings: { readyPollMs: POLL_MS, idleSeconds: 2 * context.timeScale, loadSeconds: 3 * context.timeScale, startOrder: "nats, identity, then every other service in parallel (as make dev)" },
      metrics,
      notes: [
        "RSS is VmRSS from /proc/<pid>/status (MiB; the 100 MB target is checked in MB). Under load = the highest of samples every 100 ms during 3 s of sign-ins at concurrency 8 (identity's default argon2id, 19 MiB per hash in flight), GetOnlineCount at 16 in flight, and the events the sign-ins publish.",
        "Start to ready includes Node's start, TypeScript type stripping of the service's modules, migrations on a fresh SQLite file, NATS connection and stream/consumer setup.",
      ],
    };
  },
};

async function pollReady(url: string, service: ManagedProcess): Promise<void> {
  const deadline = performance.now() + 30_000;
  while (performance.now() < deadline) {
    if (service.child.exitCode !== null) throw new Error(`${service.name} exited before it was ready:\n${service.output()}`);
    if ((await fetch(url).catch(() => undefined))?.status === 200) return;
    await sleep(POLL_MS);
  }
  throw new Error(`${service.name} not ready after 30 s`);
}

async function probeRss(args: string[]): Promise<number> {
  const probe = spawnManaged("rss-probe", process.execPath, args, {});
  try {
    await sleep(2_000);
    if (probe.child.exitCode !== null) throw new Error(`rss probe ${args.join(" ")} exited:\n${probe.output()}`);
    return memoryOf(probe.child.pid!).rssMiB;
  } finally {
    await probe.stop("SIGTERM");
  }
}

async function startBareNode(): Promise<{ process: ManagedProcess; readyMs: number }> {
  const port = await freePort();
  const started = performance.now();
  const bare = spawnManaged("bare-node", process.execPath, ["-e", BARE_NODE, String(port)], {});
  await pollReady(`http://127.0.0.1:${port}/`, bare);
  return { process: bare, readyMs: performance.now() - started };
}

/** Mixed load for `durationMs`; returns the peak VmRSS (MiB) seen per process, sampled every 100 ms. */
async function underLoad(system: BenchSystem, h2loadBinary: string | undefined, durationMs: number): Promise<Record<string, number>> {
  const pids: Record<string, number> = { nats: system.nats!.child.pid!, ...Object.fromEntries(SERVICES.map((s) => [s, system.pid(s)])) };
  const peaks: Record<string, number> = Object.fromEntries(Object.keys(pids).map((name) => [name, 0]));
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const [name, pid] of Object.entries(pids)) {
        try {
          peaks[name] = Math.max(peaks[name]!, memoryOf(pid).rssMiB);
        } catch {
          const process = name === "nats" ? system.nats : system.processes.get(name as ServiceName);
          throw new Error(`${name} (pid ${pid}) is gone under load:\n${process?.output().slice(-3000)}`);
        }
      }
      await sleep(100);
    }
  })();
  const token = await system.signIn(BENCH_ADMIN.email, BENCH_ADMIN.password);
  const identity = system.client(IdentityService, "identity", "grpc");
  const user = { email: "bench-footprint@meshwork.bench", password: "a-long-benchmark-password" };
  await system.signIn(user.email, user.password);
  const rpcLoad = h2loadBinary
    ? h2load({
        binary: h2loadBinary,
        url: `${system.baseUrl("presence")}/meshwork.presence.v1.PresenceService/GetOnlineCount`,
        headers: { "content-type": "application/grpc", te: "trailers", authorization: `Bearer ${token}` },
        body: grpcFrame(new Uint8Array(0)),
        clients: 4,
        streamsPerClient: 4,
        warmupSeconds: 0.1,
        durationSeconds: durationMs / 1000,
      })
    : Promise.resolve();
  await Promise.all([closedLoop({ concurrency: 8, warmupMs: 0, durationMs, call: () => identity.signIn(user) }), rpcLoad]);
  await sleep(300);
  sampling = false;
  await sampler;
  return peaks;
}

import { execFileSync } from "node:child_process";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { freePort, SERVICES, spawnManaged, startNats, waitFor, type ManagedProcess, type ServiceName } from "../scripts/lib/system.ts";
import { type Benchmark } from "./lib/context.ts";
import { closedLoop, grpcFrame, h2load } from "./lib/load.ts";
import { metric, type Metric } from "./lib/report.ts";
import { BENCH_ADMIN, BenchSystem, cpuTimeMsOf, memoryOf } from "./lib/system.ts";

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
 * 4. Footprint: for each run two fresh systems in fresh directories, one from the services'
 * esbuild bundles (as images run them) and one from their .ts sources (as `make dev` does), each
 * started like `make dev` (nats-server, then identity, then the other services together), timing each service from
 * spawn to its first 200 on /readyz (polled every 5 ms) and the whole system from the nats-server
 * spawn to the last readyz. Then VmRSS of each process after 2 s idle, and its peak while the
 * system is under mixed load (sign-ins at concurrency 8, GetOnlineCount by h2load, and the
 * events those sign-ins cause). Baseline: a bare `node -e` HTTP server, started and measured the
 * same way in the same run (Node's own floor for start time and memory).
 *
 * Then, per run, each bundled service started alone (nats-server and identity already up, no
 * other service running): its spawn to first 200 on /readyz and the CPU it used until then. That
 * is a pod's start in a cluster, where every pod has CPU of its own; the all-together start
 * above is `make dev` on a laptop, six processes sharing the cores, and stays as context.
 */
export const footprint: Benchmark = {
  name: "footprint",
  title: "Footprint: resident memory and time to ready, bundled and type-stripped",
  async run(context) {
    const key = (mode: Mode, name: string) => `${mode.label}/${name}`;
    const series = () => new Map<string, number[]>();
    const ready = series();
    const idle = series();
    const loaded = series();
    const alone = series();
    const aloneCpu = series();
    const push = (map: Map<string, number[]>, name: string, value: number) => map.set(name, [...(map.get(name) ?? []), value]);
    const probes: number[][] = PROBES.map(() => []);
    for (let run = 1; run <= context.runs; run++) {
      const probed = await Promise.all(PROBES.map((probe) => probeRss(probe.args)));
      probed.forEach((rss, i) => probes[i]!.push(rss));
      const bare = await startBareNode();
      push(ready, "bare", bare.readyMs);
      try {
        // Alternate which way starts first, so drift of the machine does not favour one.
        for (const mode of run % 2 === 1 ? MODES : [...MODES].reverse()) {
          const system = new BenchSystem({ services: [], bundled: mode.bundled });
          try {
            const started = performance.now();
            const distinctPort = distinctPorts();
            system.natsPort = await distinctPort();
            system.nats = await startNats({ port: system.natsPort, dataDir: path.join(system.dataDir, "nats") });
            for (const name of SERVICES) system.ports.set(name, { rpc: await distinctPort(), admin: await distinctPort() });
            const timed = async (name: ServiceName) => {
              const spawned = performance.now();
              const service = await system.startService(name, {}, false);
              await pollReady(`${system.adminUrl(name)}/readyz`, service);
              push(ready, key(mode, name), performance.now() - spawned);
            };
            await timed("identity");
            await Promise.all(SERVICES.filter((name) => name !== "identity").map(timed));
            push(ready, key(mode, "system"), performance.now() - started);
            const peers = mode.bundled ? await startPeers(system, distinctPort) : [];
            try {
              await sleep(2_000 * context.timeScale);
              push(idle, "bare", memoryOf(bare.process.child.pid!).rssMiB);
              push(idle, key(mode, "nats"), memoryOf(system.nats.child.pid!).rssMiB);
              for (const name of SERVICES) push(idle, key(mode, name), memoryOf(system.pid(name)).rssMiB);
              for (const peer of peers) {
                if (peer.child.exitCode !== null) throw new Error(`${peer.name} exited while idle:\n${peer.output().slice(-3000)}`);
                push(idle, peer.name, memoryOf(peer.child.pid!).rssMiB);
              }
            } finally {
              for (const peer of peers) await peer.stop("SIGTERM");
            }
            const peaks = await underLoad(system, context.h2load, 3_000 * context.timeScale);
            for (const [name, peak] of Object.entries(peaks)) push(loaded, key(mode, name), peak);
            const last = (map: Map<string, number[]>, name: string) => map.get(key(mode, name))!.at(-1)!.toFixed(0);
            context.log(
              `  run ${run} ${mode.label}: ready ${SERVICES.map((s) => `${s} ${last(ready, s)} ms`).join(", ")}, system ${last(ready, "system")} ms (bare node ${bare.readyMs.toFixed(0)} ms); ` +
                `RSS idle/load MiB ${[...SERVICES, "nats"].map((s) => `${s} ${last(idle, s)}/${last(loaded, s)}`).join(", ")}` +
                (peers.length > 0 ? `; peers idle ${peers.map((peer) => `${peer.name} ${idle.get(peer.name)!.at(-1)!.toFixed(0)}`).join(", ")} MiB` : ""),
            );
          } finally {
            await system.stop();
          }
        }
      } finally {
        await bare.process.stop("SIGTERM");
      }
      for (const [name, started] of await startEachAlone()) {
        push(alone, name, started.readyMs);
        push(aloneCpu, name, started.cpuMs);
      }
      context.log(`  run ${run} alone: ${SERVICES.map((s) => `${s} ${alone.get(s)!.at(-1)!.toFixed(0)} ms (CPU ${aloneCpu.get(s)!.at(-1)} ms)`).join(", ")}`);
    }
    const get = (map: Map<string, number[]>, name: string) => map.get(name)!;
    const [bundled, stripped] = MODES as [Mode, Mode];
    const moleculer = { name: "Moleculer peer idle", values: get(idle, "moleculer-peer") };
    const metrics: Metric[] = [];
    for (const name of SERVICES) {
      const idleBundled = get(idle, key(bundled, name));
      metrics.push(
        metric(`${name} RSS idle (bundle)`, "MiB", "lower", idleBundled, moleculer, (value) => ({ text: "< 85 MiB", met: value.median < 85 })),
        metric(`${name} RSS peak under load (bundle)`, "MiB", "lower", get(loaded, key(bundled, name)), { name: "its idle", values: idleBundled }, (_v, ratio) => ({
          text: "<= 1.5x idle",
          met: (ratio ?? Infinity) <= 1.5,
        })),
        metric(`${name} RSS idle (type stripping)`, "MiB", "lower", get(idle, key(stripped, name)), { name: "bundle", values: idleBundled }),
      );
    }
    metrics.push(
      metric("NestJS peer (gRPC microservice, bench/peers/nestjs) RSS idle", "MiB", "lower", get(idle, "nestjs-peer"), { name: "bare node", values: get(idle, "bare") }),
      metric("Moleculer peer (channels consumer, bench/peers/moleculer) RSS idle", "MiB", "lower", get(idle, "moleculer-peer"), { name: "bare node", values: get(idle, "bare") }),
    );
    PROBES.forEach((probe, i) => metrics.push(metric(`breakdown: ${probe.label}`, "MiB", "lower", probes[i]!, { name: "bare node", values: get(idle, "bare") })));
    metrics.push(
      metric("nats-server RSS idle", "MiB", "lower", get(idle, key(bundled, "nats"))),
      metric("nats-server RSS peak under load", "MiB", "lower", get(loaded, key(bundled, "nats"))),
    );
    const bareReady = { name: "bare node", values: get(ready, "bare") };
    for (const name of SERVICES) {
      const readyAlone = get(alone, name);
      metrics.push(
        metric(`${name} spawn to ready, started alone (bundle)`, "ms", "lower", readyAlone, bareReady, (value) => ({ text: "< 400 ms", met: value.median < 400 })),
        metric(`${name} CPU used to ready, started alone (bundle)`, "ms", "lower", get(aloneCpu, name)),
      );
    }
    for (const name of SERVICES) {
      const readyBundled = get(ready, key(bundled, name));
      metrics.push(
        metric(`${name} spawn to ready, all started together (bundle)`, "ms", "lower", readyBundled, { name: "started alone", values: get(alone, name) }),
        metric(`${name} spawn to ready, all started together (type stripping)`, "ms", "lower", get(ready, key(stripped, name)), { name: "bundle", values: readyBundled }),
      );
    }
    for (const mode of MODES) {
      metrics.push(
        metric(`whole system start to ready (${mode.title})`, "ms", "lower", get(ready, key(mode, "system")), bareReady, (value) => ({
          text: "< 5 s",
          met: value.median < 5_000,
        })),
      );
    }
    return {
      settings: {
        readyPollMs: POLL_MS,
        idleSeconds: 2 * context.timeScale,
        loadSeconds: 3 * context.timeScale,
        startOrder: "nats, identity, then every other service in parallel (as make dev); then each bundled service alone with nats and identity up",
        modes: MODES.map((mode) => mode.title),
      },
      metrics,
      notes: [
        "Each run starts the system twice: from the services' esbuild bundles (node --max-semi-space-size=8 --expose-gc services/<name>/dist/main.mjs, as the images run them; the bundle maps its own stack traces) and from their .ts sources with type stripping (make dev, the same young-generation cap); the order alternates between runs.",
        "RSS is VmRSS from /proc/<pid>/status in MiB. Under load = the highest of samples every 100 ms during 3 s of sign-ins at concurrency 8 (identity's default argon2id, 19 MiB per hash in flight), GetOnlineCount at 16 in flight, and the events the sign-ins publish.",
        "Peers, idle beside the bundled system: the NestJS gRPC peer (compiled by tsc, its own SQLite file) and the Moleculer channels consumer (type stripping of one .ts file, connected to the same nats-server).",
        "Start to ready includes Node's start, loading the bundle (or type stripping the module graph), migrations on a fresh SQLite file, NATS connection and stream/consumer setup.",
        "Started alone: each bundled service spawned on its own with nats-server and identity already up (identity itself with nats-server up), timed from spawn to its first 200 on /readyz, then stopped before the next; as a pod starts in a cluster, with the cores to itself. CPU used to ready is its user + system time (/proc/<pid>/stat) read at that first 200. Started together: nats, identity, then the six others at once on the same cores (make dev), kept as context.",
      ],
    };
  },
};

interface Mode {
  label: string;
  title: string;
  bundled: boolean;
}
const MODES: Mode[] = [
  { label: "bundled", title: "esbuild bundle", bundled: true },
  { label: "stripped", title: "type stripping", bundled: false },
];

/** The peers of bench/rpc.ts and bench/pipeline.ts, started to be measured idle. */
async function startPeers(system: BenchSystem, port: () => Promise<number>): Promise<ManagedProcess[]> {
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "bench/peers/nestjs"], { stdio: "inherit" });
  const nest = spawnManaged("nestjs-peer", process.execPath, ["bench/peers/nestjs/dist/main.js", String(await port()), "1"], {
    env: {
      IDENTITY_JWKS_URL: `${system.adminUrl("identity")}/.well-known/jwks.json`,
      TOKEN_ISSUER: "meshwork-identity",
      TOKEN_AUDIENCE: "meshwork",
      DATABASE_PATH: path.join(system.dataDir, "nestjs-peer.db"),
    },
  });
  const moleculer = spawnManaged("moleculer-peer", process.execPath, [
    "bench/peers/moleculer/consumer.ts",
    String(system.natsPort),
    "BENCHMOL",
    "bench-moleculer",
    "benchmol.v1.user.signed_in",
    path.join(system.dataDir, "moleculer.db"),
  ], {});
  for (const peer of [nest, moleculer]) await waitFor(() => peer.output().includes("ready"), peer.name, 20_000);
  return [nest, moleculer];
}

/** Free ports, each handed out once: the OS may hand the same free port out twice in a row. */
function distinctPorts(): () => Promise<number> {
  const taken = new Set<number>();
  return async () => {
    for (;;) {
      const port = await freePort();
      if (!taken.has(port)) return taken.add(port), port;
    }
  };
}

/** Polls until the first 200; returns the CPU time (ms) the process had used by then. */
async function pollReady(url: string, service: ManagedProcess): Promise<number> {
  const deadline = performance.now() + 60_000;
  while (performance.now() < deadline) {
    if (service.child.exitCode !== null) throw new Error(`${service.name} exited before it was ready:\n${service.output()}`);
    if ((await fetch(url).catch(() => undefined))?.status === 200) return cpuTimeMsOf(service.child.pid!);
    await sleep(POLL_MS);
  }
  throw new Error(`${service.name} not ready after 60 s`);
}

/**
 * Each bundled service started on its own, as a pod starts: nats-server, then identity (every
 * other service fetches its keys), then every other service one at a time, each stopped once it
 * is ready so that none shares the cores with another's start.
 */
async function startEachAlone(): Promise<Map<ServiceName, { readyMs: number; cpuMs: number }>> {
  const started = new Map<ServiceName, { readyMs: number; cpuMs: number }>();
  const system = new BenchSystem({ services: [], bundled: true });
  try {
    const distinctPort = distinctPorts();
    system.natsPort = await distinctPort();
    system.nats = await startNats({ port: system.natsPort, dataDir: path.join(system.dataDir, "nats") });
    for (const name of SERVICES) system.ports.set(name, { rpc: await distinctPort(), admin: await distinctPort() });
    for (const name of ["identity", ...SERVICES.filter((name) => name !== "identity")]) {
      const spawned = performance.now();
      const service = await system.startService(name, {}, false);
      const cpuMs = await pollReady(`${system.adminUrl(name)}/readyz`, service);
      started.set(name, { readyMs: performance.now() - spawned, cpuMs });
      if (name !== "identity") await system.stopService(name);
    }
  } finally {
    await system.stop();
  }
  return started;
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
  try {
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
          // What is measured here is memory: an overloaded machine answering nothing in the
          // window does not void the peak, so the load's own failure is only reported.
        }).catch((error: Error) => console.warn(`  footprint: GetOnlineCount load measured nothing (${error.message.split("\n")[0]})`))
      : Promise.resolve();
    await Promise.all([closedLoop({ concurrency: 8, warmupMs: 0, durationMs, call: () => identity.signIn(user) }), rpcLoad]);
    await sleep(300);
  } finally {
    // Stop sampling before the caller stops the system, whether the load succeeded or not.
    sampling = false;
    await sampler;
  }
  return peaks;
}

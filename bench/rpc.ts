import { execFileSync } from "node:child_process";
import http from "node:http";
import path from "node:path";
import type net from "node:net";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { PresenceService } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import { freePort, spawnManaged, waitFor, type ManagedProcess } from "../scripts/lib/system.ts";
import { mergeEnv, profileEnv, type Benchmark, type BenchContext } from "./lib/context.ts";
import { closedLoop, grpcFrame, h2load, type LoadResult } from "./lib/load.ts";
import { metric, type Metric } from "./lib/report.ts";
import { BENCH_ADMIN, BenchSystem, cpuTimeMsOf } from "./lib/system.ts";

const PATH = "/meshwork.presence.v1.PresenceService/GetOnlineCount";
const CLIENTS = 4;
const STREAMS = 4;

/**
 * Tracing modes presence is restarted in. "default" is what `make dev` runs: no exporter, so the
 * platform samples nothing (ids still propagate). "otlp" exports every span to a loopback sink in
 * this process. "off" sets OTEL_TRACES_SAMPLER=always_off explicitly.
 */
const MODES: { label: string; title: string; env: NodeJS.ProcessEnv; otlp: boolean; detail: boolean; only?: string[] }[] = [
  { label: "off", title: "tracing off", env: { OTEL_TRACES_SAMPLER: "always_off" }, otlp: false, detail: true },
  // The same, with unary calls left to connect-node's own handlers: what the direct path buys.
  { label: "connect-node", title: "tracing off, on connect-node's handlers", env: { OTEL_TRACES_SAMPLER: "always_off", RPC_DIRECT_UNARY: "false" }, otlp: false, detail: false, only: ["nestjs", "grpc", "connect"] },
  { label: "default", title: "default tracing (no exporter)", env: {}, otlp: false, detail: false },
  { label: "otlp", title: "tracing on (OTLP)", env: {}, otlp: true, detail: false },
];

type Variant = "bare" | "nestjs" | "grpc" | "connect";
const VARIANTS: Variant[] = ["bare", "nestjs", "grpc", "connect"];
/** Each load run: a warm-up, then the measured window (both scaled by BENCH_QUICK). */
const WARMUP_SECONDS = 0.5;
const MEASURED_SECONDS = 1.5;

/**
 * 3. RPC overhead: presence's GetOnlineCount (bearer token, auth interceptor, telemetry
 * interceptor, one SQLite count) over gRPC and over Connect (HTTP/2, binary), driven by h2load
 * at a fixed concurrency, against a bare grpc-js server answering a message of the same size on
 * the same path, measured alternately in the same run.
 */
export const rpc: Benchmark = {
  name: "rpc",
  title: "RPC: GetOnlineCount vs the NestJS gRPC peer and bare grpc-js",
  async run(context) {
    const sink = await startSink();
    const system = await new BenchSystem({ services: ["identity", "presence"] }).start();
    let bare: ManagedProcess | undefined;
    let nest: (ManagedProcess & { baseUrl: string }) | undefined;
    try {
      const token = await system.signIn(BENCH_ADMIN.email, BENCH_ADMIN.password);
      // The admin's own sign-in reaches presence as an event: wait for it so the answer is non-empty.
      const count = await waitForCount(system, token);
      const barePort = await freePort();
      bare = spawnManaged("bare-grpc", process.execPath, ["bench/workers/bare-grpc.ts", String(barePort), String(count)], {});
      await waitFor(() => bare!.output().includes("ready"), "bare grpc-js server", 10_000);
      nest = await startNestPeer(context, system, Number(count));
      const nestCount = await createClient(PresenceService, createGrpcTransport({ baseUrl: nest.baseUrl })).getOnlineCount({}, { headers: { authorization: `Bearer ${token}` } });
      if (nestCount.count !== count) throw new Error(`the NestJS peer counts ${nestCount.count}, presence ${count}`);
      const bareCount = await createClient(PresenceService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${barePort}` })).getOnlineCount({});
      if (bareCount.count !== count) throw new Error("the bare server answers a different message");

      const results = new Map<string, { rps: number[]; p50: number[]; p99: number[]; cpuUs: number[] }>();
      const record = (key: string, result: LoadResult, cpuUsPerCall?: number) => {
        const entry = results.get(key) ?? { rps: [], p50: [], p99: [], cpuUs: [] };
        entry.rps.push(result.rps);
        entry.p50.push(result.p50Ms);
        entry.p99.push(result.p99Ms);
        if (cpuUsPerCall !== undefined) entry.cpuUs.push(cpuUsPerCall);
        results.set(key, entry);
      };
      // BENCH_RPC_MODES=off,otlp limits the modes (for profiling one of them).
      const only = process.env["BENCH_RPC_MODES"]?.split(",");
      const modes = MODES.filter((mode) => !only || only.includes(mode.label));
      for (const mode of modes) {
        const env = mergeEnv(mode.env, profileEnv(context, `rpc-presence-${mode.label}`));
        if (mode.otlp) Object.assign(env, { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_BSP_SCHEDULE_DELAY: "200" });
        await system.restartService("presence", env);
        const spansBefore = sink.requests;
        for (let run = 1; run <= context.runs; run++) {
          const line: string[] = [];
          for (const variant of VARIANTS) {
            if (mode.only && !mode.only.includes(variant)) continue;
            const baseUrl = variant === "bare" ? `http://127.0.0.1:${barePort}` : variant === "nestjs" ? nest.baseUrl : system.baseUrl("presence");
            // The server's CPU time over the measured window (after the warm-up), per call: the
            // cost of a call, which moves far less with the machine's load than a rate does.
            const serverPid = variant === "nestjs" ? nest.child.pid! : variant === "bare" ? undefined : system.pid("presence");
            let cpuAtStart: number | undefined;
            const measuring = serverPid ? setTimeout(() => (cpuAtStart = cpuTimeMsOf(serverPid)), WARMUP_SECONDS * 1000 * context.timeScale) : undefined;
            const result = await drive(context, variant, baseUrl, token);
            clearTimeout(measuring);
            const cpuUsPerCall = serverPid && cpuAtStart !== undefined ? ((cpuTimeMsOf(serverPid) - cpuAtStart) * 1000) / (result.rps * MEASURED_SECONDS * context.timeScale) : undefined;
            record(`${mode.label}/${variant}`, result, cpuUsPerCall);
            line.push(`${variant} ${result.rps.toFixed(0)} rps (p50 ${result.p50Ms.toFixed(2)} / p99 ${result.p99Ms.toFixed(2)} ms)`);
          }
          if (mode.detail) {
            // What services/platform's createServiceClient should speak: the same call from a
            // connect-node client (what one service uses to call another), over each protocol.
            for (const protocol of ["grpc", "connect"] as const) {
              const result = await internalClient(context, protocol, system.baseUrl("presence"), token);
              record(`internal/${protocol}`, result);
              line.push(`internal client ${protocol} ${result.rps.toFixed(0)} rps`);
            }
          }
          context.log(`  ${mode.label} run ${run}: ${line.join(", ")}`);
        }
        if (mode.otlp) {
          await new Promise((resolve) => setTimeout(resolve, 500));
          context.log(`  otlp sink received ${sink.requests - spansBefore} export requests, ${(sink.bytes / 1024).toFixed(0)} KiB`);
          if (sink.requests === spansBefore) throw new Error("tracing was on but no spans reached the sink");
        }
      }

      const get = (key: string) => results.get(key)!;
      const metrics: Metric[] = [];
      for (const mode of modes) {
        if (mode.only) continue; // a comparison row of its own, below
        const bareRps = { name: "bare grpc-js rps", values: get(`${mode.label}/bare`).rps };
        const nestRps = { name: "NestJS gRPC rps", values: get(`${mode.label}/nestjs`).rps };
        if (mode.detail) metrics.push(metric(`NestJS gRPC peer, ${mode.title}: rps`, "req/s", "higher", nestRps.values, bareRps));
        for (const variant of ["grpc", "connect"] as const) {
          const entry = get(`${mode.label}/${variant}`);
          const name = `${variant === "grpc" ? "gRPC" : "Connect"}, ${mode.title}`;
          metrics.push(metric(`${name}: rps vs NestJS`, "req/s", "higher", entry.rps, nestRps, (_v, ratio) => ({ text: ">= 0.7x NestJS gRPC", met: (ratio ?? 0) >= 0.7 })));
          if (mode.detail) metrics.push(metric(`${name}: rps vs bare grpc-js`, "req/s", "higher", entry.rps, bareRps));
          if (!mode.detail) continue;
          metrics.push(
            metric(`${name}: presence CPU per call`, "µs", "lower", entry.cpuUs, { name: "NestJS CPU µs/call", values: get(`${mode.label}/nestjs`).cpuUs }),
          );
          metrics.push(
            metric(`${name}: p50`, "ms", "lower", entry.p50, { name: "bare p50", values: get(`${mode.label}/bare`).p50 }),
            metric(`${name}: p99`, "ms", "lower", entry.p99, { name: "bare p99", values: get(`${mode.label}/bare`).p99 }),
          );
        }
      }
      if (results.has("internal/grpc")) {
        metrics.push(
          metric("internal client (connect-node, 16 in flight): gRPC rps", "req/s", "higher", get("internal/grpc").rps),
          metric("internal client (connect-node, 16 in flight): Connect over HTTP/2 rps", "req/s", "higher", get("internal/connect").rps, {
            name: "internal gRPC rps",
            values: get("internal/grpc").rps,
          }),
        );
      }
      if (results.has("connect-node/grpc") && results.has("off/grpc")) {
        for (const variant of ["grpc", "connect"] as const) {
          const name = variant === "grpc" ? "gRPC" : "Connect";
          metrics.push(
            metric(`${name}, tracing off: direct path (rpc/direct-unary.ts) vs connect-node's handler`, "req/s", "higher", get(`off/${variant}`).rps, {
              name: `connect-node ${name} rps`,
              values: get(`connect-node/${variant}`).rps,
            }),
            metric(`${name}, tracing off: presence CPU per call, direct path vs connect-node's handler`, "µs", "lower", get(`off/${variant}`).cpuUs, {
              name: `connect-node ${name} µs/call`,
              values: get(`connect-node/${variant}`).cpuUs,
            }),
            metric(`${name} on connect-node's handler, tracing off: rps vs NestJS`, "req/s", "higher", get(`connect-node/${variant}`).rps, {
              name: "NestJS gRPC rps",
              values: get("connect-node/nestjs").rps,
            }),
          );
        }
      }
      if (results.has("otlp/grpc") && results.has("off/grpc")) {
        for (const variant of ["grpc", "connect"] as const) {
          metrics.push(
            metric(
              `${variant === "grpc" ? "gRPC" : "Connect"}: presence CPU per call with tracing on (OTLP) vs off`,
              "µs",
              "lower",
              get(`otlp/${variant}`).cpuUs,
              { name: "tracing off µs/call", values: get(`off/${variant}`).cpuUs },
              (_v, ratio) => ({ text: "tracing costs <= 10% (<= 1.1x)", met: (ratio ?? Infinity) <= 1.1 }),
            ),
          );
          metrics.push(
            metric(
              `${variant === "grpc" ? "gRPC" : "Connect"}: rps with tracing on (OTLP) vs off`,
              "req/s",
              "higher",
              get(`otlp/${variant}`).rps,
              { name: "tracing off rps", values: get(`off/${variant}`).rps },
              (_v, ratio) => ({ text: "tracing costs <= 10% (>= 0.9x)", met: (ratio ?? 0) >= 0.9 }),
            ),
          );
        }
      }
      return {
        settings: {
          load: context.h2load ? `h2load -c ${CLIENTS} -m ${STREAMS} -t 1` : `built-in client, concurrency ${CLIENTS * STREAMS}`,
          concurrency: CLIENTS * STREAMS,
          warmupSeconds: WARMUP_SECONDS * context.timeScale,
          durationSeconds: MEASURED_SECONDS * context.timeScale,
          responseCount: Number(count),
        },
        metrics,
        notes: [
          `${CLIENTS * STREAMS} requests in flight (${CLIENTS} HTTP/2 connections x ${STREAMS} streams); gRPC is application/grpc, Connect is application/proto over HTTP/2; both carry the admin's bearer token.`,
          "Tracing modes: off = OTEL_TRACES_SAMPLER=always_off (also run once more with RPC_DIRECT_UNARY=false, without the bare server, for the direct path's rows); default = what make dev runs (no exporter, so nothing is sampled); on = OTLP/HTTP to a loopback sink in the bench process (batch delay 200 ms).",
          "NestJS peer (bench/peers/nestjs): @nestjs/core 12.5.1 + @nestjs/microservices 12.1.1 on its gRPC transport (@grpc/grpc-js, presence's .proto via @grpc/proto-loader), a Guard verifying the bearer token with jose and a verified-token cache, a prepared better-sqlite3 count; gRPC only (Nest's gRPC transport serves no Connect or gRPC-Web), so Connect is compared with the same NestJS gRPC figure.",
          "Server CPU per call: user + system time of the serving process (/proc/<pid>/stat, 10 ms ticks) from the end of the warm-up to the end of the run, divided by the calls of the measured window; it moves far less with the machine's load than a rate does.",
          "presence is restarted for each tracing mode, and the bare server is measured again in each, so every ratio compares numbers taken minutes apart at most.",
        ],
      };
    } finally {
      await bare?.stop("SIGTERM");
      await nest?.stop("SIGTERM");
      await system.stop();
      sink.close();
    }
  },
};

async function drive(context: BenchContext, variant: Variant, baseUrl: string, token: string): Promise<LoadResult> {
  const warmupSeconds = WARMUP_SECONDS * context.timeScale;
  const durationSeconds = MEASURED_SECONDS * context.timeScale;
  const connect = variant === "connect";
  const grpc = !connect;
  if (context.h2load) {
    return h2load({
      binary: context.h2load,
      url: baseUrl + PATH,
      headers: connect
        ? { "content-type": "application/proto", "connect-protocol-version": "1", authorization: `Bearer ${token}` }
        : { "content-type": "application/grpc", te: "trailers", authorization: `Bearer ${token}` },
      // h2load cannot post an empty file, so Connect's empty request carries one unknown varint
      // field (tag 1, value 0): still a valid GetOnlineCountRequest, two bytes long.
      body: connect ? Uint8Array.of(0x08, 0x00) : grpcFrame(new Uint8Array(0)),
      clients: CLIENTS,
      streamsPerClient: STREAMS,
      warmupSeconds,
      durationSeconds,
    });
  }
  const { createConnectTransport } = await import("@connectrpc/connect-node");
  const transport = grpc ? createGrpcTransport({ baseUrl }) : createConnectTransport({ baseUrl, httpVersion: "2" });
  const client = createClient(PresenceService, transport);
  const headers = { authorization: `Bearer ${token}` };
  return closedLoop({
    concurrency: CLIENTS * STREAMS,
    warmupMs: warmupSeconds * 1000,
    durationMs: durationSeconds * 1000,
    call: () => client.getOnlineCount({}, { headers }),
  });
}

/**
 * The NestJS peer (bench/peers/nestjs): compiled with tsc as Nest projects are, then started on
 * its own port with presence's JWKS, issuer and audience, and its own SQLite file seeded with the
 * same number of live users.
 */
async function startNestPeer(context: BenchContext, system: BenchSystem, count: number): Promise<ManagedProcess & { baseUrl: string }> {
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "bench/peers/nestjs"], { stdio: "inherit" });
  const port = await freePort();
  const peer = spawnManaged("nestjs-peer", process.execPath, ["bench/peers/nestjs/dist/main.js", String(port), String(count)], {
    env: mergeEnv(profileEnv(context, "rpc-nestjs"), {
      IDENTITY_JWKS_URL: `${system.adminUrl("identity")}/.well-known/jwks.json`,
      TOKEN_ISSUER: "meshwork-identity",
      TOKEN_AUDIENCE: "meshwork",
      DATABASE_PATH: path.join(system.dataDir, "nestjs-peer.db"),
    }),
  });
  await waitFor(() => peer.output().includes("ready"), "NestJS gRPC peer", 20_000).catch((error: Error) => {
    throw new Error(`${error.message}\n${peer.output()}`);
  });
  return Object.assign(peer, { baseUrl: `http://127.0.0.1:${port}` });
}

/** A connect-node client in this process, as services/platform's createServiceClient builds one, at 16 calls in flight. */
async function internalClient(context: BenchContext, protocol: "grpc" | "connect", baseUrl: string, token: string): Promise<LoadResult> {
  const { createConnectTransport } = await import("@connectrpc/connect-node");
  const transport = protocol === "grpc" ? createGrpcTransport({ baseUrl }) : createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true });
  const client = createClient(PresenceService, transport);
  const headers = { authorization: `Bearer ${token}` };
  return closedLoop({
    concurrency: CLIENTS * STREAMS,
    warmupMs: 500 * context.timeScale,
    durationMs: 1_500 * context.timeScale,
    call: () => client.getOnlineCount({}, { headers }),
  });
}

async function waitForCount(system: BenchSystem, token: string): Promise<bigint> {
  for (const protocol of ["grpc", "connect"] as const) {
    const presence = system.client(PresenceService, "presence", protocol, token);
    let count = 0n;
    await waitFor(async () => (count = (await presence.getOnlineCount({})).count) > 0n, `presence to count the admin (${protocol})`, 15_000);
    if (protocol === "connect") return count;
  }
  return 0n;
}

/** A loopback OTLP/HTTP sink: accepts every export with an empty (valid) protobuf answer. */
async function startSink(): Promise<{ url: string; requests: number; bytes: number; close(): void }> {
  const state = { url: "", requests: 0, bytes: 0, close: () => server.close() };
  const server = http.createServer((req, res) => {
    req.on("data", (chunk: Buffer) => (state.bytes += chunk.length));
    req.on("end", () => {
      state.requests++;
      res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return state;
}

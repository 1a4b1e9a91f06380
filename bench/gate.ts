import http2 from "node:http2";
import net from "node:net";
import { create } from "@bufbuild/protobuf";
import { createClient, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { exportJWK, generateKeyPair, SignJWT, createLocalJWKSet } from "jose";
import { createLogger, createTokenVerifier, defineAccess, rulesFor, SIGNED_IN } from "@meshwork/platform";
import { authorizeCall } from "@meshwork/platform/auth/authorize.ts";
import { errorInterceptor, serverTelemetryInterceptor } from "@meshwork/platform/rpc/interceptors.ts";
import { serverPipeline } from "@meshwork/platform/rpc/pipeline.ts";
import { validationInterceptor } from "@meshwork/platform/rpc/validation.ts";
import { deprecationInterceptor } from "@meshwork/platform/rpc/deprecation.ts";
import { strictJson } from "@meshwork/platform/rpc/gate.ts";
import { GetOnlineCountResponseSchema, PresenceService } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import type { Benchmark } from "./lib/context.ts";
import { closedLoop, grpcFrame } from "./lib/load.ts";
import { metric } from "./lib/report.ts";

const CONCURRENCY = 16;

/**
 * 5. What checking the token before the body is read costs. Two servers in this process, built
 * the same way (connect-node on HTTP/2, the platform's interceptors, one in-process handler), that
 * differ only in where the token is checked: in Connect's request gate, before the body is read
 * (the platform's path), or in an interceptor after it is decoded (the path before issue 16, kept
 * here as the baseline). Measured for an authorized call, and for the call the gate exists for:
 * no token and a 64 KiB body of garbage, which the interceptor path reads and parses first.
 */
export const gate: Benchmark = {
  name: "gate",
  title: "token check in the request gate vs in an interceptor",
  async run(context) {
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const verify = createTokenVerifier({
      keys: createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" }] }),
      issuer: "meshwork-identity",
      audience: "meshwork",
    });
    const token = await new SignJWT({ roles: ["member"], sid: "s1" })
      .setProtectedHeader({ alg: "ES256", kid: "k1" })
      .setIssuer("meshwork-identity")
      .setAudience("meshwork")
      .setSubject("u1")
      .setExpirationTime(Math.floor(Date.now() / 1000) + 3600)
      .sign(privateKey);
    const log = createLogger({ service: "bench", level: "silent", format: "json" });
    const access = defineAccess(rulesFor(PresenceService, { GetOnlineCount: SIGNED_IN, ListOnlineUsers: SIGNED_IN }));
    const authorize = authorizeCall(access, verify, log);
    const inGate = serverPipeline({ access, verify, deprecations: new Map(), log });
    // The baseline: the same interceptors, the token checked innermost after the body decoded.
    const authInterceptor: Interceptor = (next) => async (req) => {
      await authorize({ service: req.service, method: req.method, requestHeader: req.header, values: req.contextValues } as HandlerContext);
      return next(req);
    };
    const inInterceptor = {
      interceptors: [serverTelemetryInterceptor(), deprecationInterceptor(new Map()), validationInterceptor(), errorInterceptor(log), authInterceptor],
      jsonOptions: strictJson,
    };
    const servers = { gate: await serve(inGate), interceptor: await serve(inInterceptor) };
    const garbage = grpcFrame(Uint8Array.from({ length: 64 * 1024 }, (_, index) => (index * 131 + 7) % 256));
    const results = new Map<string, { authorized: number[]; refused: number[] }>();
    const answerOf = async (url: string) => {
      const session = http2.connect(url);
      try {
        return await rawCall(session, garbage);
      } finally {
        session.destroy();
      }
    };
    try {
      const windowMs = 3_000 * context.timeScale;
      for (let run = 1; run <= context.runs; run++) {
        for (const [label, server] of Object.entries(servers)) {
          const entry = results.get(label) ?? { authorized: [], refused: [] };
          results.set(label, entry);
          const client = createClient(PresenceService, createGrpcTransport({ baseUrl: server.url, interceptors: [bearer(token)] }));
          const authorized = await closedLoop({ concurrency: CONCURRENCY, warmupMs: 500 * context.timeScale, durationMs: windowMs, call: () => client.getOnlineCount({}) });
          // A connection per refused call: the gate answers without reading the body, and unread
          // bytes never return the connection's flow-control window, so a shared connection stalls.
          const refused = await closedLoop({ concurrency: CONCURRENCY, warmupMs: 500 * context.timeScale, durationMs: windowMs, call: () => answerOf(server.url) });
          entry.authorized.push(authorized.rps);
          entry.refused.push(refused.rps);
          context.log(`  run ${run} ${label}: authorized ${authorized.rps.toFixed(0)} calls/s, refused ${refused.rps.toFixed(0)} calls/s (failed ${authorized.failed + refused.failed})`);
        }
      }
      const answers = { gate: await answerOf(servers.gate.url), interceptor: await answerOf(servers.interceptor.url) };
      const g = results.get("gate")!;
      const i = results.get("interceptor")!;
      return {
        settings: { concurrency: CONCURRENCY, windowMs, refusedBodyBytes: garbage.length, client: "connect-node gRPC over HTTP/2, in the servers' process" },
        metrics: [
          metric("authorized GetOnlineCount, token in the gate", "calls/s", "higher", g.authorized, { name: "token in an interceptor", values: i.authorized }),
          metric("no token + 64 KiB garbage body (a connection each), token in the gate", "calls/s", "higher", g.refused, { name: "token in an interceptor", values: i.refused }),
        ],
        notes: [
          `Answers to no token + garbage: gate ${answers.gate}; interceptor ${answers.interceptor} (the body was parsed before the token was looked at).`,
          "Client and servers share one process and its event loop: the figures compare the two paths, they are not the service's throughput (see the rpc benchmark).",
        ],
      };
    } finally {
      await Promise.all(Object.values(servers).map((server) => server.close()));
    }
  },
};

function bearer(token: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

async function serve(options: { interceptors: Interceptor[]; requestGate?: (context: HandlerContext) => Promise<void>; jsonOptions: typeof strictJson }) {
  const handler = connectNodeAdapter({
    ...options,
    routes: (router) =>
      router.service(PresenceService, {
        getOnlineCount: () => create(GetOnlineCountResponseSchema, { count: 1n }),
        listOnlineUsers: () => ({}),
      }),
  });
  const server = http2.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * One raw gRPC call without a token; resolves with the grpc-status it answered. It resolves on the
 * status, as gRPC clients do, and cancels the stream: a server that refused the call without
 * reading the body never opens the flow-control window for the rest of it.
 */
function rawCall(session: http2.ClientHttp2Session, body: Uint8Array): Promise<string> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "POST", ":path": "/meshwork.presence.v1.PresenceService/GetOnlineCount", "content-type": "application/grpc", te: "trailers" });
    const settle = (status: unknown) => {
      if (status === undefined) return;
      resolve(`grpc-status ${String(status)}`);
      stream.close(http2.constants.NGHTTP2_CANCEL);
    };
    stream.on("response", (headers) => settle(headers["grpc-status"]));
    stream.on("trailers", (trailers) => settle(trailers["grpc-status"]));
    stream.on("data", () => undefined);
    stream.on("error", () => undefined);
    stream.on("close", () => reject(new Error("closed without a grpc-status")));
    stream.end(body);
  });
}

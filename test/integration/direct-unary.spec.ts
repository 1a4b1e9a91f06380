import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import zlib from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { AuditEventSchema, AuditService, GetEventRequestSchema, GetEventResponseSchema } from "@meshwork/proto/meshwork/audit/v1/audit_pb.js";
import { requestDecodedInterceptor, requestGate, strictJson } from "../../services/platform/src/rpc/gate.ts";
import { startRpcServer, type RpcServer } from "../../services/platform/src/rpc/server.ts";

/**
 * Unary gRPC and Connect POSTs are served on a direct path (services/platform/src/rpc/direct-unary.ts)
 * instead of connect-node's universal handlers. The same calls, byte for byte, go to a server on
 * the direct path and to one with it turned off; every answer (HTTP status, headers, trailers,
 * body) must be the same, for successes and for each way a call can fail. The Connect
 * conformance suite (`make test-conformance`) covers the protocol's cases beyond these.
 */
describe("unary calls on the direct path answer exactly as connect-node does", function () {
  const READ_MAX_BYTES = 64 * 1024;
  let direct: RpcServer;
  let connectNode: RpcServer;

  // The interceptor sets a header and a trailer on every answer, as the platform's do.
  const stamp: Interceptor = (next) => async (req) => {
    const res = await next(req);
    res.header.set("x-stamped", req.method.name);
    res.trailer.set("x-served-by", "interceptor");
    return res;
  };

  // Passes on a request of its own, as an interceptor may: the handler must see what it carries.
  const rewrite: Interceptor = (next) => (req) => {
    if (!req.header.has("x-rewrite")) return next(req);
    const header = new Headers(req.header);
    header.set("x-rewritten", req.header.get("x-rewrite")!);
    return next({ ...req, header });
  };

  /** The signal and time left each server's handler saw, by request id. */
  const seen = { direct: new Map<string, { signal: AbortSignal; timeoutMs: number | undefined }>(), connectNode: new Map<string, { signal: AbortSignal; timeoutMs: number | undefined }>() };

  const start = (directUnary: boolean) =>
    startRpcServer({
      host: "127.0.0.1",
      port: 0,
      directUnary,
      allowedOrigins: ["https://app.example"],
      interceptors: [requestDecodedInterceptor(), stamp, rewrite],
      // The platform's gate: refuses on the headers alone, and turns an undecodable body into INVALID_ARGUMENT.
      requestGate: requestGate(async (context) => {
        if (context.requestHeader.get("x-refuse")) throw new ConnectError("refused at the gate", Code.Unauthenticated);
      }),
      jsonOptions: strictJson,
      readMaxBytes: READ_MAX_BYTES,
      routes: (router) =>
        router.service(AuditService, {
          async getEvent(req, ctx) {
            if (req.id.startsWith("watch")) (directUnary ? seen.direct : seen.connectNode).set(req.id, { signal: ctx.signal, timeoutMs: ctx.timeoutMs() });
            if (req.id === "watch-reset") await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
            const rewritten = ctx.requestHeader.get("x-rewritten");
            if (rewritten) ctx.responseHeader.set("x-handler-saw", rewritten);
            switch (req.id) {
              case "fail":
                throw new ConnectError("no such event", Code.NotFound, { "x-why": "it was never kept" }, [
                  { desc: AuditEventSchema, value: create(AuditEventSchema, { id: "detail" }) },
                ]);
              case "crash":
                throw new Error("a bug, not for the caller's eyes");
              case "slow":
                // Ends with the call's deadline: the signal's reason is DEADLINE_EXCEEDED.
                await new Promise((resolve, reject) => {
                  const timer = setTimeout(resolve, 2_000);
                  ctx.signal.addEventListener("abort", () => {
                    clearTimeout(timer);
                    reject(ctx.signal.reason);
                  });
                });
                break;
            }
            ctx.responseHeader.set("x-handler", "getEvent");
            ctx.responseTrailer.set("x-handler-trailer", "done");
            return create(GetEventResponseSchema, { event: create(AuditEventSchema, { id: req.id, payload: new Uint8Array(req.id === "big" ? 4096 : 8).fill(7) }) });
          },
          listEvents: () => create(AuditEventSchema, {}) as never,
        }),
    });

  before(async () => {
    [direct, connectNode] = await Promise.all([start(true), start(false)]);
  });
  after(() => Promise.all([direct.close(100), connectNode.close(100)]));

  const PATH = "/meshwork.audit.v1.AuditService/GetEvent";
  const envelope = (flags: number, data: Uint8Array) => {
    const bytes = Buffer.alloc(5 + data.length);
    bytes[0] = flags;
    bytes.writeUInt32BE(data.length, 1);
    bytes.set(data, 5);
    return bytes;
  };
  const request = (id: string) => toBinary(GetEventRequestSchema, create(GetEventRequestSchema, { id }));

  type Case = { name: string; headers?: Record<string, string>; body: Buffer; expect: number | string };
  const grpcCases: Case[] = [
    { name: "a call that succeeds, with a header and a trailer from the handler and from an interceptor", body: envelope(0, request("ok")), expect: "0" },
    { name: "a 4 KiB answer to a caller that accepts gzip (compressed, as connect-node does above 1 KiB)", headers: { "grpc-accept-encoding": "gzip" }, body: envelope(0, request("big")), expect: "0" },
    { name: "a gzip-compressed request", headers: { "grpc-encoding": "gzip" }, body: envelope(1, zlib.gzipSync(request("ok"))), expect: "0" },
    { name: "a handler's error with metadata and details", body: envelope(0, request("fail")), expect: String(Code.NotFound) },
    { name: "a handler's unexpected exception", body: envelope(0, request("crash")), expect: String(Code.Internal) },
    { name: "a call the gate refuses", headers: { "x-refuse": "1" }, body: envelope(0, request("ok")), expect: String(Code.Unauthenticated) },
    { name: "a body that is not the request message", body: envelope(0, Buffer.from([0xff, 0xff, 0xff, 0xff])), expect: String(Code.InvalidArgument) },
    { name: "a message larger than readMaxBytes", body: envelope(0, Buffer.alloc(READ_MAX_BYTES + 1)), expect: String(Code.ResourceExhausted) },
    { name: "two messages for a unary method", body: Buffer.concat([envelope(0, request("a")), envelope(0, request("b"))]), expect: String(Code.Unimplemented) },
    { name: "no message at all", body: Buffer.alloc(0), expect: String(Code.Unimplemented) },
    { name: "an incomplete envelope", body: envelope(0, request("ok")).subarray(0, 7), expect: String(Code.InvalidArgument) },
    { name: "a compressed flag without grpc-encoding", body: envelope(1, request("ok")), expect: String(Code.Internal) },
    { name: "an encoding the server does not know", headers: { "grpc-encoding": "snappy" }, body: envelope(1, request("ok")), expect: String(Code.Unimplemented) },
    { name: "a grpc-timeout that does not parse", headers: { "grpc-timeout": "soon" }, body: envelope(0, request("ok")), expect: String(Code.InvalidArgument) },
    { name: "a deadline the handler outlives", headers: { "grpc-timeout": "50m" }, body: envelope(0, request("slow")), expect: String(Code.DeadlineExceeded) },
  ];
  const proto = { "content-type": "application/proto" };
  const json = { "content-type": "application/json" };
  const connectCases: Case[] = [
    { name: "a binary call that succeeds, with headers and trailers (as trailer-*) from the handler and from an interceptor", headers: proto, body: Buffer.from(request("ok")), expect: 200 },
    { name: "a JSON call that succeeds (an unknown field ignored)", headers: json, body: Buffer.from(JSON.stringify({ id: "ok", later: 1 })), expect: 200 },
    { name: "a 4 KiB answer to a caller that accepts gzip", headers: { ...proto, "accept-encoding": "gzip" }, body: Buffer.from(request("big")), expect: 200 },
    { name: "a gzip-compressed request", headers: { ...proto, "content-encoding": "gzip" }, body: zlib.gzipSync(request("ok")), expect: 200 },
    { name: "a handler's error with metadata and details", headers: proto, body: Buffer.from(request("fail")), expect: 404 },
    { name: "a handler's unexpected exception", headers: json, body: Buffer.from(JSON.stringify({ id: "crash" })), expect: 500 },
    { name: "a call the gate refuses", headers: { ...proto, "x-refuse": "1" }, body: Buffer.from(request("ok")), expect: 401 },
    { name: "a binary body that is not the request message", headers: proto, body: Buffer.from([0xff, 0xff, 0xff, 0xff]), expect: 400 },
    { name: "JSON that is not the request message", headers: json, body: Buffer.from('{"id": 42}'), expect: 400 },
    { name: "JSON that is not UTF-8", headers: json, body: Buffer.from([0x7b, 0x22, 0x69, 0x64, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]), expect: 400 },
    { name: "a body larger than readMaxBytes", headers: proto, body: Buffer.alloc(READ_MAX_BYTES + 1), expect: 429 },
    { name: "an encoding the server does not know", headers: { ...proto, "content-encoding": "snappy" }, body: Buffer.from(request("ok")), expect: 501 },
    { name: "a connect-timeout-ms that does not parse", headers: { ...proto, "connect-timeout-ms": "soon" }, body: Buffer.from(request("ok")), expect: 400 },
    { name: "a deadline the handler outlives", headers: { ...proto, "connect-timeout-ms": "50" }, body: Buffer.from(request("slow")), expect: 504 },
    { name: "a call from an allowed browser origin (the answer carries CORS headers)", headers: { ...json, origin: "https://app.example" }, body: Buffer.from(JSON.stringify({ id: "ok" })), expect: 200 },
    { name: "a call from an origin not allowed (no CORS headers)", headers: { ...json, origin: "https://elsewhere.example" }, body: Buffer.from(JSON.stringify({ id: "ok" })), expect: 200 },
  ];
  const suites: { protocol: string; httpVersion: 1 | 2; cases: Case[] }[] = [
    { protocol: "gRPC", httpVersion: 2, cases: grpcCases },
    { protocol: "Connect", httpVersion: 2, cases: connectCases },
    { protocol: "Connect", httpVersion: 1, cases: connectCases },
  ];

  for (const suite of suites) {
    describe(`${suite.protocol} over HTTP/${suite.httpVersion === 1 ? "1.1" : "2"}`, () => {
      for (const testCase of suite.cases) {
        it(testCase.name, async () => {
          const headers = { ...(suite.protocol === "gRPC" ? { "content-type": "application/grpc", te: "trailers" } : {}), ...testCase.headers };
          const before = direct.directUnaryCalls;
          const [fromDirect, fromConnectNode] = await Promise.all([
            call(suite.httpVersion, direct.port, PATH, headers, testCase.body),
            call(suite.httpVersion, connectNode.port, PATH, headers, testCase.body),
          ]);
          assert.equal(direct.directUnaryCalls, before + 1, "the call took the direct path");
          assert.equal(connectNode.directUnaryCalls, 0);
          const outcome = suite.protocol === "gRPC" ? fromConnectNode.grpcStatus : fromConnectNode.status;
          assert.equal(outcome, testCase.expect, `connect-node answered ${JSON.stringify(fromConnectNode)}`);
          if (testCase.headers?.origin === "https://app.example") assert.equal(fromDirect.headers["access-control-allow-origin"], "https://app.example");
          assert.deepEqual(fromDirect, fromConnectNode);
        });
      }
    });
  }

  it("leaves Connect GET, gRPC's JSON codec, gRPC-Web and unknown methods to connect-node", async () => {
    const before = direct.directUnaryCalls;
    const grpcJson = await call(2, direct.port, PATH, { "content-type": "application/grpc+json", te: "trailers" }, envelope(0, Buffer.from(JSON.stringify({ id: "ok" }))));
    assert.equal(grpcJson.grpcStatus, "0");
    const grpcWeb = await call(1, direct.port, PATH, { "content-type": "application/grpc-web+proto" }, envelope(0, request("ok")));
    assert.equal(grpcWeb.status, 200);
    const unknownPath = "/meshwork.audit.v1.AuditService/NoSuchMethod";
    const [unknown, unknownOnConnectNode] = await Promise.all([
      call(2, direct.port, unknownPath, { "content-type": "application/grpc", te: "trailers" }, envelope(0, request("ok"))),
      call(2, connectNode.port, unknownPath, { "content-type": "application/grpc", te: "trailers" }, envelope(0, request("ok"))),
    ]);
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown, unknownOnConnectNode);
    assert.equal(direct.directUnaryCalls, before);
  });

  it("keeps serving when callers reset their streams mid-call, with any error code", async () => {
    for (const code of [http2.constants.NGHTTP2_CANCEL, http2.constants.NGHTTP2_INTERNAL_ERROR, http2.constants.NGHTTP2_PROTOCOL_ERROR]) {
      for (const contentType of ["application/grpc", "application/proto"]) {
        const session = http2.connect(`http://127.0.0.1:${direct.port}`);
        session.on("error", () => undefined);
        const stream = session.request({ ":method": "POST", ":path": PATH, "content-type": contentType, te: "trailers" });
        stream.on("error", () => undefined);
        stream.end(contentType === "application/grpc" ? envelope(0, request("slow")) : Buffer.from(request("slow")));
        await new Promise((resolve) => setTimeout(resolve, 30));
        stream.close(code);
        await new Promise((resolve) => stream.once("close", resolve));
        session.close();
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    const answer = await createClient(AuditService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${direct.port}` })).getEvent({ id: "after" });
    assert.equal(answer.event?.id, "after");
  });

  it("gives the handler connect-node's signal: CANCELED when the caller resets, an AbortError once the call ended, the deadline's time left", async () => {
    const client = (port: number) => createClient(AuditService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
    for (const [port, signals] of [[direct.port, seen.direct], [connectNode.port, seen.connectNode]] as const) {
      await client(port).getEvent({ id: "watch-ended" }, { timeoutMs: 60_000 });
      const ended = signals.get("watch-ended")!;
      assert.equal(ended.signal.aborted, true, "aborted once the call ended");
      assert.equal((ended.signal.reason as Error).name, "AbortError");
      assert.ok(ended.timeoutMs! > 50_000 && ended.timeoutMs! <= 60_000, `time left ${ended.timeoutMs}`);
      // A deadline in microseconds: the time left is still whole milliseconds, as connect-es gives it.
      const micro = await call(2, port, PATH, { "content-type": "application/grpc", te: "trailers", "grpc-timeout": "59999999u" }, envelope(0, request("watch-micro")));
      assert.equal(micro.grpcStatus, "0");
      const left = signals.get("watch-micro")!.timeoutMs!;
      assert.ok(Number.isInteger(left) && left > 50_000 && left <= 60_000, `time left ${left}`);

      const session = http2.connect(`http://127.0.0.1:${port}`);
      session.on("error", () => undefined);
      const stream = session.request({ ":method": "POST", ":path": PATH, "content-type": "application/grpc", te: "trailers" });
      stream.on("error", () => undefined);
      stream.end(envelope(0, request("watch-reset")));
      await waitUntil(() => signals.has("watch-reset"));
      stream.close(http2.constants.NGHTTP2_CANCEL);
      const reset = signals.get("watch-reset")!;
      await waitUntil(() => reset.signal.aborted);
      assert.equal((reset.signal.reason as ConnectError).code, Code.Canceled);
      assert.equal(reset.timeoutMs, undefined);
      session.close();
    }
  });

  it("hands the handler the request an interceptor passed on", async () => {
    for (const [protocol, headers, body] of [
      ["gRPC", { "content-type": "application/grpc", te: "trailers", "x-rewrite": "by-interceptor" }, envelope(0, request("ok"))],
      ["Connect", { "content-type": "application/proto", "x-rewrite": "by-interceptor" }, Buffer.from(request("ok"))],
    ] as const) {
      const [fromDirect, fromConnectNode] = await Promise.all([call(2, direct.port, PATH, headers, body), call(2, connectNode.port, PATH, headers, body)]);
      assert.equal(fromDirect.headers["x-handler-saw"], "by-interceptor", protocol);
      assert.deepEqual(fromDirect, fromConnectNode);
    }
  });

  it("serves generated clients, many calls in flight on one connection, over gRPC and Connect", async () => {
    const baseUrl = `http://127.0.0.1:${direct.port}`;
    for (const transport of [createGrpcTransport({ baseUrl }), createConnectTransport({ baseUrl, httpVersion: "2" }), createConnectTransport({ baseUrl, httpVersion: "1.1" })]) {
      const client = createClient(AuditService, transport);
      const ids = Array.from({ length: 200 }, (_, index) => `call-${index}`);
      const answers = await Promise.all(ids.map((id) => client.getEvent({ id })));
      assert.deepEqual(
        answers.map((answer) => answer.event?.id),
        ids,
      );
      await assert.rejects(client.getEvent({ id: "fail" }), (error: ConnectError) => error.code === Code.NotFound && error.metadata.get("x-why") === "it was never kept" && error.details.length === 1);
    }
  });
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  trailers: Record<string, string>;
  grpcStatus: string | undefined;
  body: string;
}

/** One raw call: what the server sent, with the date and connection bookkeeping left out and headers sorted. */
function call(httpVersion: 1 | 2, port: number, path: string, headers: Record<string, string>, body: Buffer): Promise<Answer> {
  const clean = (from: http.IncomingHttpHeaders) =>
    Object.fromEntries(
      Object.entries(from)
        .filter(([key]) => !["date", ":status", "connection", "keep-alive"].includes(key))
        .map(([key, value]) => [key, String(value)])
        .sort(([a], [b]) => String(a).localeCompare(String(b))),
    );
  const answer = (status: number, responseHeaders: http.IncomingHttpHeaders, trailers: http.IncomingHttpHeaders, chunks: Buffer[]): Answer => ({
    status,
    headers: clean(responseHeaders),
    trailers: clean(trailers),
    grpcStatus: (trailers["grpc-status"] ?? responseHeaders["grpc-status"]) as string | undefined,
    body: Buffer.concat(chunks).toString("hex"),
  });
  if (httpVersion === 1) {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port, path, method: "POST", headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve(answer(res.statusCode ?? 0, res.headers, res.trailers, chunks)));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(body);
    });
  }
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ":path": path, ...headers });
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on("response", (received) => (responseHeaders = received));
    stream.on("trailers", (received) => (trailers = received));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", reject);
    stream.on("close", () => {
      session.close();
      resolve(answer(Number(responseHeaders[":status"]), responseHeaders, trailers, chunks));
    });
    stream.end(body);
  });
}

async function waitUntil(condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited += 5) {
    if (waited > 5_000) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

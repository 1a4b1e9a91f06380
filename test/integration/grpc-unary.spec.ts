import assert from "node:assert/strict";
import http2 from "node:http2";
import zlib from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuditEventSchema, AuditService, GetEventRequestSchema, GetEventResponseSchema } from "@meshwork/proto/meshwork/audit/v1/audit_pb.js";
import { requestDecodedInterceptor, requestGate, strictJson } from "../../services/platform/src/rpc/gate.ts";
import { startRpcServer, type RpcServer } from "../../services/platform/src/rpc/server.ts";

/**
 * Unary gRPC over HTTP/2 is served on a direct path (services/platform/src/rpc/grpc-unary.ts)
 * instead of connect-node's streaming pipeline. The same calls, byte for byte, go to a server on
 * the direct path and to one with it turned off; every answer (HTTP status, headers, trailers,
 * body) must be the same, for successes and for each way a call can fail. The Connect
 * conformance suite (`make test-conformance`) covers the protocol's cases beyond these.
 */
describe("unary gRPC on the direct path answers exactly as connect-node does", function () {
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

  const start = (directGrpcUnary: boolean) =>
    startRpcServer({
      host: "127.0.0.1",
      port: 0,
      directGrpcUnary,
      interceptors: [requestDecodedInterceptor(), stamp],
      // The platform's gate: refuses on the headers alone, and turns an undecodable body into INVALID_ARGUMENT.
      requestGate: requestGate(async (context) => {
        if (context.requestHeader.get("x-refuse")) throw new ConnectError("refused at the gate", Code.Unauthenticated);
      }),
      jsonOptions: strictJson,
      readMaxBytes: READ_MAX_BYTES,
      routes: (router) =>
        router.service(AuditService, {
          async getEvent(req, ctx) {
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

  const cases: { name: string; headers?: Record<string, string>; body: Buffer; expectCode: number }[] = [
    { name: "a call that succeeds, with a header and a trailer from the handler and from an interceptor", body: envelope(0, request("ok")), expectCode: 0 },
    { name: "a 4 KiB answer to a caller that accepts gzip (compressed, as connect-node does above 1 KiB)", headers: { "grpc-accept-encoding": "gzip" }, body: envelope(0, request("big")), expectCode: 0 },
    { name: "a gzip-compressed request", headers: { "grpc-encoding": "gzip" }, body: envelope(1, zlib.gzipSync(request("ok"))), expectCode: 0 },
    { name: "a handler's error with metadata and details", body: envelope(0, request("fail")), expectCode: Code.NotFound },
    { name: "a handler's unexpected exception", body: envelope(0, request("crash")), expectCode: Code.Internal },
    { name: "a call the gate refuses", headers: { "x-refuse": "1" }, body: envelope(0, request("ok")), expectCode: Code.Unauthenticated },
    { name: "a body that is not the request message", body: envelope(0, Buffer.from([0xff, 0xff, 0xff, 0xff])), expectCode: Code.InvalidArgument },
    { name: "a message larger than readMaxBytes", body: envelope(0, Buffer.alloc(READ_MAX_BYTES + 1)), expectCode: Code.ResourceExhausted },
    { name: "two messages for a unary method", body: Buffer.concat([envelope(0, request("a")), envelope(0, request("b"))]), expectCode: Code.Unimplemented },
    { name: "no message at all", body: Buffer.alloc(0), expectCode: Code.Unimplemented },
    { name: "an incomplete envelope", body: envelope(0, request("ok")).subarray(0, 7), expectCode: Code.InvalidArgument },
    { name: "a compressed flag without grpc-encoding", body: envelope(1, request("ok")), expectCode: Code.Internal },
    { name: "an encoding the server does not know", headers: { "grpc-encoding": "snappy" }, body: envelope(1, request("ok")), expectCode: Code.Unimplemented },
    { name: "a grpc-timeout that does not parse", headers: { "grpc-timeout": "soon" }, body: envelope(0, request("ok")), expectCode: Code.InvalidArgument },
    { name: "a deadline the handler outlives", headers: { "grpc-timeout": "50m" }, body: envelope(0, request("slow")), expectCode: Code.DeadlineExceeded },
  ];

  for (const testCase of cases) {
    it(testCase.name, async () => {
      const before = direct.directGrpcUnaryCalls;
      const [fromDirect, fromConnectNode] = await Promise.all([call(direct.port, PATH, testCase.headers ?? {}, testCase.body), call(connectNode.port, PATH, testCase.headers ?? {}, testCase.body)]);
      assert.equal(direct.directGrpcUnaryCalls, before + 1, "the call took the direct path");
      assert.equal(connectNode.directGrpcUnaryCalls, 0);
      assert.equal(fromConnectNode.grpcStatus, String(testCase.expectCode), `connect-node answered ${JSON.stringify(fromConnectNode)}`);
      assert.deepEqual(fromDirect, fromConnectNode);
    });
  }

  it("leaves gRPC JSON, and methods it does not serve, to connect-node", async () => {
    const before = direct.directGrpcUnaryCalls;
    const json = await call(direct.port, PATH, { "content-type": "application/grpc+json" }, envelope(0, Buffer.from(JSON.stringify({ id: "ok" }))));
    assert.equal(json.grpcStatus, "0");
    const unknownPath = "/meshwork.audit.v1.AuditService/NoSuchMethod";
    const [unknown, unknownOnConnectNode] = await Promise.all([call(direct.port, unknownPath, {}, envelope(0, request("ok"))), call(connectNode.port, unknownPath, {}, envelope(0, request("ok")))]);
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown, unknownOnConnectNode);
    assert.equal(direct.directGrpcUnaryCalls, before);
  });

  it("serves a generated client, many calls in flight on one connection", async () => {
    const client = createClient(AuditService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${direct.port}` }));
    const ids = Array.from({ length: 200 }, (_, index) => `call-${index}`);
    const answers = await Promise.all(ids.map((id) => client.getEvent({ id })));
    assert.deepEqual(
      answers.map((answer) => answer.event?.id),
      ids,
    );
    await assert.rejects(client.getEvent({ id: "fail" }), (error: ConnectError) => error.code === Code.NotFound && error.metadata.get("x-why") === "it was never kept" && error.details.length === 1);
  });
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  trailers: Record<string, string>;
  grpcStatus: string | undefined;
  body: string;
}

/** One raw HTTP/2 call: what the server sent, with the date left out and headers sorted. */
function call(port: number, path: string, headers: Record<string, string>, body: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers });
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on("response", (received) => (responseHeaders = received));
    stream.on("trailers", (received) => (trailers = received));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", reject);
    stream.on("close", () => {
      session.close();
      const clean = (from: http2.IncomingHttpHeaders) =>
        Object.fromEntries(
          Object.entries(from)
            .filter(([key]) => key !== "date" && key !== ":status")
            .map(([key, value]) => [key, String(value)])
            .sort(([a], [b]) => String(a).localeCompare(String(b))),
        );
      resolve({
        status: Number(responseHeaders[":status"]),
        headers: clean(responseHeaders),
        trailers: clean(trailers),
        grpcStatus: (trailers["grpc-status"] ?? responseHeaders["grpc-status"]) as string | undefined,
        body: Buffer.concat(chunks).toString("hex"),
      });
    });
    stream.end(body);
  });
}

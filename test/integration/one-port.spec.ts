import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { AuditService, AuditEventSchema, GetEventResponseSchema } from "@meshwork/proto/meshwork/audit/v1/audit_pb.js";
import { clientAddressKey } from "@meshwork/platform";
import { strictJson } from "../../services/platform/src/rpc/gate.ts";
import { startRpcServer, type RpcServer } from "../../services/platform/src/rpc/server.ts";

/**
 * The one-port router: every protocol on one cleartext port, HTTP/2 handed the native socket
 * after the preface is peeked at. GetEvent echoes the request's id, a payload of the id's
 * length, and the caller's address as the router saw it.
 */
describe("one RPC port for HTTP/2 and HTTP/1.1", function () {
  let server: RpcServer;
  let baseUrl: string;
  const signals: AbortSignal[] = [];

  before(async () => {
    server = await startRpcServer({
      host: "127.0.0.1",
      port: 0,
      interceptors: [],
      requestGate: async () => undefined,
      jsonOptions: strictJson,
      readMaxBytes: 4 * 1024 * 1024,
      routes: (router) =>
        router.service(AuditService, {
          getEvent: (req, ctx) => {
            signals.push(ctx.signal);
            return create(GetEventResponseSchema, {
              event: create(AuditEventSchema, { id: req.id, payload: new Uint8Array(req.id.length).fill(7), source: ctx.values.get(clientAddressKey) }),
            });
          },
          listEvents: () => {
            throw new Error("not used");
          },
        }),
    });
    baseUrl = `http://127.0.0.1:${server.port}`;
  });
  after(() => server.close(100));

  it("serves gRPC over HTTP/2: 1,000 calls on one connection, 64 in flight, each answered for itself", async () => {
    const client = createClient(AuditService, createGrpcTransport({ baseUrl }));
    for (let wave = 0; wave < 1_000 / 64; wave++) {
      const ids = Array.from({ length: 64 }, (_, i) => `call-${wave}-${i}`);
      const answers = await Promise.all(ids.map((id) => client.getEvent({ id })));
      assert.deepEqual(
        answers.map((answer) => answer.event?.id),
        ids,
      );
    }
  });

  it("names the caller's address on HTTP/2 and on HTTP/1.1", async () => {
    const h2 = await createClient(AuditService, createGrpcTransport({ baseUrl })).getEvent({ id: "x" });
    const h1 = await createClient(AuditService, createConnectTransport({ baseUrl, httpVersion: "1.1" })).getEvent({ id: "x" });
    assert.equal(h2.event?.source, "127.0.0.1");
    assert.equal(h1.event?.source, "127.0.0.1");
  });

  it("carries 1 MiB bodies both ways over HTTP/2 (gRPC, Connect) and HTTP/1.1 (Connect, gRPC-Web)", async () => {
    const id = "m".repeat(1024 * 1024);
    const transports = {
      "gRPC h2": createGrpcTransport({ baseUrl }),
      "Connect h2": createConnectTransport({ baseUrl, httpVersion: "2" }),
      "Connect HTTP/1.1": createConnectTransport({ baseUrl, httpVersion: "1.1" }),
      "gRPC-Web HTTP/1.1": createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
    };
    for (const [name, transport] of Object.entries(transports)) {
      const answer = await createClient(AuditService, transport).getEvent({ id });
      assert.equal(answer.event?.id.length, id.length, name);
      assert.equal(answer.event?.payload.length, id.length, name);
    }
  });

  it("serves Connect JSON over HTTP/1.1 on the same port while HTTP/2 calls are in flight", async () => {
    const client = createClient(AuditService, createGrpcTransport({ baseUrl }));
    const h2Calls = Promise.all(Array.from({ length: 50 }, (_, i) => client.getEvent({ id: `h2-${i}` })));
    const h1Answers = await Promise.all(Array.from({ length: 20 }, (_, i) => postJson(`${baseUrl}/meshwork.audit.v1.AuditService/GetEvent`, { id: `h1-${i}` })));
    assert.deepEqual(
      h1Answers.map((answer) => (answer as { event: { id: string } }).event.id),
      Array.from({ length: 20 }, (_, i) => `h1-${i}`),
    );
    assert.equal((await h2Calls).length, 50);
  });

  it("ends each call's signal with one shared AbortError (scripts/patch-dependencies.ts), on HTTP/2 and HTTP/1.1", async () => {
    signals.length = 0;
    await createClient(AuditService, createGrpcTransport({ baseUrl })).getEvent({ id: "a" });
    await createClient(AuditService, createConnectTransport({ baseUrl, httpVersion: "1.1" })).getEvent({ id: "b" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(signals.length, 2);
    for (const signal of signals) {
      assert.ok(signal.aborted);
      assert.ok(signal.reason instanceof DOMException && signal.reason.name === "AbortError");
    }
    assert.equal(signals[0]!.reason, signals[1]!.reason, "a fresh DOMException per call: the patch is not applied");
  });

  it("routes an HTTP/2 preface that arrives one byte at a time", async () => {
    const proxy = await dribblingProxy(server.port, 64);
    try {
      const client = createClient(AuditService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${proxy.port}` }));
      const answer = await client.getEvent({ id: "dribbled" });
      assert.equal(answer.event?.id, "dribbled");
      assert.ok(proxy.dribbledWrites() >= 24, `the preface went out in ${proxy.dribbledWrites()} writes`);
    } finally {
      proxy.close();
    }
  });

  it("routes an HTTP/1.1 request line that arrives one byte at a time", async () => {
    const proxy = await dribblingProxy(server.port, 64);
    try {
      const answer = await postJson(`http://127.0.0.1:${proxy.port}/meshwork.audit.v1.AuditService/GetEvent`, { id: "slow" });
      assert.equal((answer as { event: { id: string } }).event.id, "slow");
    } finally {
      proxy.close();
    }
  });
});

function postJson(url: string, body: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: "POST", headers: { "content-type": "application/json" }, agent: false }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (text += chunk));
      response.on("end", () => (response.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`${response.statusCode}: ${text}`))));
    });
    request.on("error", reject);
    request.end(JSON.stringify(body));
  });
}

/** A TCP proxy that forwards the client's first `bytes` bytes one per write, 1 ms apart, then relays. */
async function dribblingProxy(target: number, bytes: number) {
  let writes = 0;
  const proxy = net.createServer((client) => {
    client.setNoDelay(true);
    const upstream = net.connect(target, "127.0.0.1");
    upstream.setNoDelay(true);
    let budget = bytes;
    let queue = Promise.resolve();
    client.on("data", (chunk: Buffer) => {
      queue = queue.then(async () => {
        let offset = 0;
        while (budget > 0 && offset < chunk.length) {
          upstream.write(chunk.subarray(offset, offset + 1));
          writes++;
          offset++;
          budget--;
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
        if (offset < chunk.length) upstream.write(chunk.subarray(offset));
      });
    });
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("close", close).on("error", close);
    upstream.on("close", close).on("error", close);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return { port: (proxy.address() as net.AddressInfo).port, dribbledWrites: () => writes, close: () => proxy.close() };
}

import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createConnectRouter, createContextValues, createRouterTransport, type ConnectRouter } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerResponse } from "@connectrpc/connect/protocol";
import { exportJWK, generateKeyPair, SignJWT, createLocalJWKSet } from "jose";
import { AuditService, GetEventRequestSchema, GetEventResponseSchema } from "@meshwork/proto/meshwork/audit/v1/audit_pb.js";
import { GetOnlineCountResponseSchema, PresenceService } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import { defineAccess, PUBLIC, rulesFor, SIGNED_IN } from "../../src/auth/access.ts";
import { createTokenVerifier } from "../../src/auth/verifier.ts";
import { MALFORMED_REQUEST, NotFoundError } from "../../src/errors.ts";
import { createLogger } from "../../src/logger.ts";
import { deprecationsInForce } from "../../src/rpc/deprecation.ts";
import { serverPipeline } from "../../src/rpc/pipeline.ts";

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
  .setExpirationTime(Math.floor(Date.now() / 1000) + 60)
  .sign(privateKey);

/** gRPC status 0; Connect's Code enum starts at Canceled. */
const OK = 0;
const sunset = new Date("2027-06-30T00:00:00Z");
const pipeline = serverPipeline({
  access: defineAccess({
    ...rulesFor(PresenceService, { GetOnlineCount: SIGNED_IN, ListOnlineUsers: PUBLIC }),
    ...rulesFor(AuditService, { ListEvents: PUBLIC, GetEvent: PUBLIC }),
  }),
  verify,
  deprecations: deprecationsInForce([{ api: PresenceService.typeName, successor: "meshwork.presence.v2.PresenceService", deprecatedOn: "2026-11-26", sunset: "2027-06-30" }]),
  // Before the sunset, whatever day the test runs.
  deprecationClock: () => Date.parse("2027-01-01T00:00:00Z"),
  log: createLogger({ service: "test", level: "silent", format: "json" }),
});
const routes = (router: ConnectRouter) => {
  router.service(PresenceService, {
    getOnlineCount: () => create(GetOnlineCountResponseSchema, { count: 1n }),
    listOnlineUsers: () => {
      throw new NotFoundError("no one is here");
    },
  });
  router.service(AuditService, {
    getEvent: () => create(GetEventResponseSchema, {}),
    listEvents: () => {
      throw new Error("a bug in the handler");
    },
  });
};

describe("the RPC call path", () => {
  const transport = createRouterTransport(routes, { router: pipeline });

  it("maps a domain error innermost, so a deprecated method's error still carries Deprecation and Sunset", async () => {
    const error = await createClient(PresenceService, transport)
      .listOnlineUsers({})
      .then(() => undefined, (caught: unknown) => ConnectError.from(caught));
    assert.equal(error?.code, Code.NotFound);
    assert.equal(error.rawMessage, "no one is here");
    assert.equal(error.metadata.get("sunset"), sunset.toUTCString());
    assert.match(error.metadata.get("deprecation") ?? "", /^@\d+$/);
    assert.equal(error.metadata.get("link"), '</meshwork.presence.v2.PresenceService>; rel="successor-version"');
  });

  it("keeps an unexpected handler failure INTERNAL with a fixed message", async () => {
    const error = await createClient(AuditService, transport)
      .listEvents({})
      .then(() => undefined, (caught: unknown) => ConnectError.from(caught));
    assert.deepEqual([error?.code, error?.rawMessage], [Code.Internal, "internal error"]);
  });

  it("refuses a request that breaks its contract rules, naming the field and the rule but not the value", async () => {
    const error = await createClient(AuditService, transport)
      .getEvent({ id: "x".repeat(1_000_000) })
      .then(() => undefined, (caught: unknown) => ConnectError.from(caught));
    assert.equal(error?.code, Code.InvalidArgument);
    assert.equal(error.rawMessage, "invalid request: id: must be a valid UUID [string.uuid]");
  });
});

/** Raw requests straight into Connect's protocol handlers: the bytes no generated client would send. */
describe("malformed request bodies", () => {
  const router = createConnectRouter(pipeline);
  routes(router);
  const handler = (path: string): UniversalHandler => router.handlers.find((candidate) => candidate.requestPath === path)!;
  const garbage = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x42, 0x00, 0x07]);
  const envelope = (payload: Uint8Array) => {
    const framed = new Uint8Array(5 + payload.length);
    new DataView(framed.buffer).setUint32(1, payload.length);
    framed.set(payload, 5);
    return framed;
  };
  const call = async (path: string, contentType: string, body: Uint8Array, authorization?: string) => {
    const response = await handler(path)({
      httpVersion: "2.0",
      method: "POST",
      url: `http://localhost${path}`,
      header: new Headers({ "content-type": contentType, ...(authorization ? { authorization: `Bearer ${authorization}` } : {}) }),
      body: (async function* () {
        yield body;
      })(),
      signal: new AbortController().signal,
      contextValues: createContextValues(),
    });
    return outcome(response);
  };

  const protocols = [
    { name: "gRPC", contentType: "application/grpc", frame: envelope },
    { name: "gRPC-Web", contentType: "application/grpc-web+proto", frame: envelope },
    { name: "Connect binary", contentType: "application/proto", frame: (payload: Uint8Array) => payload },
  ];

  for (const protocol of protocols) {
    it(`answers INVALID_ARGUMENT "${MALFORMED_REQUEST}" to an undecodable body over ${protocol.name}, never the parser's text`, async () => {
      assert.deepEqual(await call("/meshwork.audit.v1.AuditService/GetEvent", protocol.contentType, protocol.frame(garbage)), {
        code: Code.InvalidArgument,
        message: MALFORMED_REQUEST,
      });
    });

    it(`answers UNAUTHENTICATED, not a parse error, to an undecodable body without a token over ${protocol.name}`, async () => {
      assert.equal((await call("/meshwork.presence.v1.PresenceService/GetOnlineCount", protocol.contentType, protocol.frame(garbage))).code, Code.Unauthenticated);
    });
  }

  it("reads invalid UTF-8 in Connect JSON as malformed", async () => {
    const body = Buffer.concat([Buffer.from('{"id":"a'), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), Buffer.from('b"}')]);
    assert.deepEqual(await call("/meshwork.audit.v1.AuditService/GetEvent", "application/json", body), { code: Code.InvalidArgument, message: MALFORMED_REQUEST });
  });

  it("still serves a well-formed call on the same handlers", async () => {
    const body = toBinary(GetEventRequestSchema, create(GetEventRequestSchema, { id: "01890a5d-ac96-774b-bcce-b302099a8057" }));
    assert.deepEqual(await call("/meshwork.audit.v1.AuditService/GetEvent", "application/grpc", envelope(body), token), { code: OK, message: "" });
  });
});

/** The status a protocol handler answered: from the trailers (gRPC), the trailer frame (gRPC-Web) or the JSON error (Connect). */
async function outcome(response: UniversalServerResponse): Promise<{ code: number; message: string }> {
  const chunks: Uint8Array[] = [];
  if (response.body instanceof Uint8Array) chunks.push(response.body);
  else if (response.body) for await (const chunk of response.body) chunks.push(chunk);
  const body = Buffer.concat(chunks);
  const contentType = response.header?.get("content-type") ?? "";
  if (contentType.startsWith("application/grpc-web")) {
    let offset = 0;
    while (offset < body.length) {
      const flags = body[offset]!;
      const length = body.readUInt32BE(offset + 1);
      if (flags & 0x80) return grpcStatus(new Headers(body.subarray(offset + 5, offset + 5 + length).toString().trim().split("\r\n").map((line) => line.split(":", 2) as [string, string])));
      offset += 5 + length;
    }
    throw new Error("no trailer frame");
  }
  if (contentType.startsWith("application/grpc")) return grpcStatus(response.trailer ?? new Headers(response.header));
  if (response.status === 200) return { code: OK, message: "" };
  const error = JSON.parse(body.toString()) as { code: string; message: string };
  return { code: Code[error.code.replace(/_(\w)/g, (_m, c: string) => c.toUpperCase()).replace(/^\w/, (c) => c.toUpperCase()) as keyof typeof Code], message: error.message };
}

function grpcStatus(trailer: Headers): { code: number; message: string } {
  return { code: Number(trailer.get("grpc-status")), message: decodeURIComponent(trailer.get("grpc-message") ?? "") };
}

/**
 * The server under test for the Connect conformance suite (connectconformance --mode server):
 * ConformanceService served by the platform's RPC server (the one-port router: HTTP/1.1 and
 * HTTP/2 cleartext on one port; gRPC, gRPC-Web and Connect) through the platform's whole call
 * pipeline (rpc/pipeline.ts: request gate with the access table, telemetry, cache control,
 * deprecation, validation, error mapping), exactly as a service serves its own methods; the
 * suite's methods are public in the access table, since its clients send no token. The suite writes a
 * size-prefixed ServerCompatRequest on stdin; the answer (host and port) goes to stdout the same
 * way. `make test-conformance` runs it for every protocol and HTTP version served.
 */
import { create, createRegistry, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import fs from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { defineAccess, PUBLIC, rulesFor } from "../../services/platform/src/auth/access.ts";
import { InvalidTokenError } from "../../services/platform/src/auth/verifier.ts";
import { createLogger } from "../../services/platform/src/logger.ts";
import { serverPipeline } from "../../services/platform/src/rpc/pipeline.ts";
import { startRpcServer } from "../../services/platform/src/rpc/server.ts";
import { ServerCompatRequestSchema, ServerCompatResponseSchema } from "./gen/connectrpc/conformance/v1/server_compat_pb.js";
import {
  BidiStreamRequestSchema,
  ClientStreamRequestSchema,
  ConformancePayload_RequestInfoSchema,
  ConformancePayloadSchema,
  ConformanceService,
  IdempotentUnaryRequestSchema,
  ServerStreamRequestSchema,
  UnaryRequestSchema,
  type ConformancePayload_RequestInfo,
  type Error as ErrorDefinition,
  type Header,
  type StreamResponseDefinition,
  type UnaryResponseDefinition,
} from "./gen/connectrpc/conformance/v1/service_pb.js";

const input = fs.readFileSync(process.stdin.fd);
const request = fromBinary(ServerCompatRequestSchema, input.subarray(4, 4 + input.readUInt32BE(0)));
if (request.useTls) throw new Error("TLS is not served: the mesh terminates it (the suite's config says supportsTls: false)");

const pipeline = serverPipeline({
  access: defineAccess(
    rulesFor(ConformanceService, { Unary: PUBLIC, ServerStream: PUBLIC, ClientStream: PUBLIC, BidiStream: PUBLIC, Unimplemented: PUBLIC, IdempotentUnary: PUBLIC }),
  ),
  verify: () => Promise.reject(new InvalidTokenError("the conformance server accepts no tokens")),
  deprecations: new Map(),
  log: createLogger({ service: "conformance", level: "silent", format: "json" }),
});
const server = await startRpcServer({
  host: "127.0.0.1",
  port: 0,
  readMaxBytes: request.messageReceiveLimit || 4 * 1024 * 1024,
  ...pipeline,
  // RequestInfo echoes the requests as google.protobuf.Any, which JSON can only write with a registry.
  jsonOptions: { ...pipeline.jsonOptions, registry: createRegistry(UnaryRequestSchema, ServerStreamRequestSchema, ClientStreamRequestSchema, BidiStreamRequestSchema, IdempotentUnaryRequestSchema) },
  routes: conformanceRoutes,
});
const answer = toBinary(ServerCompatResponseSchema, create(ServerCompatResponseSchema, { host: "127.0.0.1", port: server.port }));
const size = Buffer.alloc(4);
size.writeUInt32BE(answer.length);
process.stdout.write(Buffer.concat([size, answer]));
process.once("SIGTERM", () => void server.close(1_000).then(() => process.exit(0)));

function conformanceRoutes(router: ConnectRouter): void {
  // Unimplemented is left out on purpose: the router answers it with Unimplemented.
  router.service(ConformanceService, {
    async unary(req, ctx) {
      return { payload: await answerUnary(req.responseDefinition, [pack(UnaryRequestSchema, req)], ctx) };
    },
    async idempotentUnary(req, ctx) {
      return { payload: await answerUnary(req.responseDefinition, [pack(IdempotentUnaryRequestSchema, req)], ctx) };
    },
    async *serverStream(req, ctx) {
      const definition = req.responseDefinition;
      setHeaders(ctx, definition);
      const info = requestInfo(ctx, [pack(ServerStreamRequestSchema, req)]);
      let sent = 0;
      for (const data of definition?.responseData ?? []) {
        await sleep(definition!.responseDelayMs);
        yield { payload: { data, requestInfo: sent === 0 ? info : undefined } };
        sent++;
      }
      if (definition?.error) throw errorFrom(definition.error, sent === 0 ? info : undefined);
    },
    async clientStream(requests, ctx) {
      let definition: UnaryResponseDefinition | undefined;
      const received = [];
      for await (const message of requests) {
        if (received.length === 0) definition = message.responseDefinition;
        received.push(pack(ClientStreamRequestSchema, message));
      }
      return { payload: await answerUnary(definition, received, ctx) };
    },
    async *bidiStream(requests, ctx) {
      let definition: StreamResponseDefinition | undefined;
      let fullDuplex = false;
      let first = true;
      let sent = 0;
      let pending: ReturnType<typeof pack>[] = [];
      for await (const message of requests) {
        if (first) {
          definition = message.responseDefinition;
          fullDuplex = message.fullDuplex;
          setHeaders(ctx, definition);
        }
        pending.push(pack(BidiStreamRequestSchema, message));
        if (fullDuplex) {
          const responses = definition?.responseData ?? [];
          if (sent >= responses.length) {
            if (definition?.error) throw errorFrom(definition.error, requestInfo(ctx, pending, !first));
            first = false;
            continue;
          }
          await sleep(definition!.responseDelayMs);
          // The first response echoes everything; later ones only the requests since the last response.
          yield { payload: { data: responses[sent], requestInfo: requestInfo(ctx, pending, sent > 0) } };
          pending = [];
          sent++;
        }
        first = false;
      }
      const responses = definition?.responseData ?? [];
      const info = requestInfo(ctx, pending, fullDuplex && sent > 0);
      for (; sent < responses.length; sent++) {
        await sleep(definition!.responseDelayMs);
        yield { payload: { data: responses[sent], requestInfo: fullDuplex || sent === 0 ? info : undefined } };
      }
      if (definition?.error) throw errorFrom(definition.error, responses.length === 0 ? info : undefined);
    },
  });
}

async function answerUnary(definition: UnaryResponseDefinition | undefined, requests: ReturnType<typeof pack>[], ctx: HandlerContext) {
  setHeaders(ctx, definition);
  const info = requestInfo(ctx, requests);
  if (definition?.responseDelayMs) await sleep(definition.responseDelayMs);
  if (definition?.response.case === "error") throw errorFrom(definition.response.value, info);
  return create(ConformancePayloadSchema, { data: definition?.response.case === "responseData" ? definition.response.value : new Uint8Array(0), requestInfo: info });
}

function setHeaders(ctx: HandlerContext, definition: { responseHeaders: Header[]; responseTrailers: Header[] } | undefined): void {
  for (const header of definition?.responseHeaders ?? []) for (const value of header.value) ctx.responseHeader.append(header.name, value);
  for (const trailer of definition?.responseTrailers ?? []) for (const value of trailer.value) ctx.responseTrailer.append(trailer.name, value);
}

/** What the server observed: headers, the timeout, the requests, and for Connect GET the query. */
function requestInfo(ctx: HandlerContext, requests: ReturnType<typeof pack>[], requestsOnly = false): ConformancePayload_RequestInfo {
  if (requestsOnly) return create(ConformancePayload_RequestInfoSchema, { requests });
  const headers = new Map<string, string[]>();
  ctx.requestHeader.forEach((value, name) => headers.set(name, [...(headers.get(name) ?? []), value]));
  const timeout = ctx.timeoutMs();
  const url = new URL(ctx.url);
  return create(ConformancePayload_RequestInfoSchema, {
    requestHeaders: [...headers].map(([name, value]) => ({ name, value })),
    timeoutMs: timeout === undefined ? undefined : BigInt(timeout),
    requests,
    connectGetInfo:
      ctx.requestMethod === "GET" ? { queryParams: [...new Set(url.searchParams.keys())].map((name) => ({ name, value: url.searchParams.getAll(name) })) } : undefined,
  });
}

function errorFrom(definition: ErrorDefinition, info: ConformancePayload_RequestInfo | undefined): ConnectError {
  const error = new ConnectError(definition.message ?? "", definition.code as number as Code);
  // The details the test case asks for travel as they are (already packed as Any), then what the server observed.
  error.details = definition.details.map((detail) => ({ type: detail.typeUrl.slice(detail.typeUrl.lastIndexOf("/") + 1), value: detail.value, debug: undefined }));
  if (info) error.details.push({ desc: ConformancePayload_RequestInfoSchema, value: info });
  return error;
}

function pack<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>) {
  return anyPack(schema, message);
}

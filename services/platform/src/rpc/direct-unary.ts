import http from "node:http";
import http2 from "node:http2";
import type { Readable } from "node:stream";
import { create, type DescMessage, type DescMethod, type DescMethodUnary, type DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextKey,
  createMethodImplSpec,
  createServiceImplSpec,
  type ConnectRouter,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import {
  compressionNegotiate,
  createMethodSerializationLookup,
  encodeEnvelope,
  envelopeCompress,
  envelopeDecompress,
  mergeNonProtocolHeaders,
  type Compression,
} from "@connectrpc/connect/protocol";
import * as connectProtocol from "@connectrpc/connect/protocol-connect";
import * as grpcProtocol from "@connectrpc/connect/protocol-grpc";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import { abortHooks, type AbortHooks } from "./call-abort.ts";
import type { JsonRequestOptions, RequestGate } from "./gate.ts";
import { RecordHeaders } from "./record-headers.ts";

/**
 * Unary calls served straight from Node's request and response, through the same request gate,
 * interceptors and implementations as connect-node, built from connect-es's own protocol pieces
 * (content types, timeouts, compression negotiation, envelopes, serialization limits, error
 * encodings), so every answer is the one connect-node would give. The handler context and the
 * interceptor chain are this file's own (startCall, invoke), with connect-es's semantics.
 *
 * Why: connect-node runs every gRPC call, unary ones included, through its streaming pipeline (a
 * chain of async generators per call), and every call of any protocol through its universal
 * request and response (a URL parsed, the headers copied twice, the body as an async iterable,
 * the answer written by a loop that awaits each chunk and hands trailers over). On the same
 * presence, the direct path serves 2.2x the gRPC calls of connect-node's (docs/performance.md).
 *
 * It takes a POST to a unary method registered without per-service options, in gRPC's binary
 * format over HTTP/2 or in the Connect protocol (binary or JSON, HTTP/1.1 or HTTP/2). Everything
 * else stays on connect-node: Connect GET (its query encoding and caching), gRPC's JSON codec,
 * gRPC-Web, streaming methods. Answer for answer the two are compared in
 * test/integration/direct-unary.spec.ts, and the Connect conformance suite runs through both.
 */
export interface DirectUnaryOptions {
  interceptors: Interceptor[];
  requestGate: RequestGate;
  readMaxBytes: number;
  jsonOptions: JsonRequestOptions;
  /** The call's context values, from its headers and the peer's address. */
  contextValues: (headers: http.IncomingHttpHeaders, remoteAddress: string | undefined) => ContextValues;
}

export interface DirectUnaryRoutes {
  /** Wraps the server's route registration so unary methods are recorded as they are registered. */
  record(routes: (router: ConnectRouter) => void): (router: ConnectRouter) => void;
  /** Calls served so far. */
  readonly served: number;
  /**
   * Serves a call that arrived through Node's compatibility API (HTTP/1.1, or HTTP/2 with
   * headers the HTTP layer set first, such as CORS) and returns true, or returns false and leaves
   * it untouched for connect-node.
   */
  serve(req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): boolean;
  /** The same for an HTTP/2 stream before Node's compatibility layer wraps it. */
  serveStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): boolean;
}

/** One call's HTTP exchange, whichever of Node's APIs carries it. */
interface Exchange {
  headers: http.IncomingHttpHeaders;
  /** The request's URL, for a handler that asks (built on demand). */
  url(): string;
  httpVersion: 1 | 2;
  /** The request body. */
  body: Readable;
  contextValues: ContextValues;
  /** Runs once when the exchange ends, answered or not. */
  onClose(listener: () => void): void;
  /** False once the caller is gone or an answer started. */
  canAnswer(): boolean;
  answer(status: number, headers: http.OutgoingHttpHeaders, body: Uint8Array | undefined, trailers?: http.OutgoingHttpHeaders): void;
  /** Ends the exchange without an answer (a bug in this file, never a call's error). */
  abandon(): void;
}

interface UnaryRoute {
  spec: MethodImplSpec & { kind: "unary" };
  serialization: ReturnType<typeof createMethodSerializationLookup>;
  /** The interceptors around the implementation, composed once (connect-es composes them per call). */
  invoke: (request: UnaryRequest) => Promise<UnaryResponse>;
}

/** connect-node's defaults for a server (connect-node-adapter.ts, universal-handler.ts). */
const acceptCompression: Compression[] = [compressionGzip, compressionBrotli];
const compressMinBytes = 1024;
const maxTimeoutMs = Number.MAX_SAFE_INTEGER;
const grpcBinaryContentType = /^application\/grpc(?:\+proto)?$/i;

export function directUnaryRoutes(options: DirectUnaryOptions): DirectUnaryRoutes {
  const routes = new Map<string, UnaryRoute>();
  let served = 0;
  const limits = { readMaxBytes: options.readMaxBytes, writeMaxBytes: 0xffffffff };

  const add = (path: string, spec: MethodImplSpec) => {
    if (spec.kind !== "unary") return;
    const unary = spec as UnaryRoute["spec"];
    routes.set(path, {
      spec: unary,
      serialization: createMethodSerializationLookup(spec.method as DescMethodUnary, undefined, options.jsonOptions, limits),
      invoke: options.interceptors.reduceRight<Parameters<Interceptor>[0]>((next, interceptor) => interceptor(next), implementationOf(unary) as Parameters<Interceptor>[0]) as UnaryRoute["invoke"],
    });
  };

  return {
    record(register) {
      return (router) => {
        const recording: ConnectRouter = {
          get handlers() {
            return router.handlers;
          },
          service(service: DescService, implementation, handlerOptions) {
            router.service(service, implementation, handlerOptions);
            // A service with its own handler options (limits, interceptors) stays on connect-node.
            if (handlerOptions === undefined) {
              const spec = createServiceImplSpec(service, implementation);
              for (const method of service.methods) add(`/${service.typeName}/${method.name}`, spec.methods[method.localName]!);
            }
            return recording;
          },
          rpc(method: DescMethod, impl, handlerOptions) {
            (router.rpc as (method: DescMethod, impl: unknown, handlerOptions: unknown) => ConnectRouter)(method, impl, handlerOptions);
            if (handlerOptions === undefined) add(`/${method.parent.typeName}/${method.name}`, (createMethodImplSpec as (method: DescMethod, impl: unknown) => MethodImplSpec)(method, impl));
            return recording;
          },
        };
        register(recording);
      };
    },

    get served() {
      return served;
    },

    serve(req, res) {
      if (req.method !== "POST" || req.url === undefined) return false;
      const route = routes.get(req.url);
      if (!route) return false;
      return dispatch(route, compatExchange(req, res, options));
    },

    serveStream(stream, headers) {
      if (headers[":method"] !== "POST") return false;
      const route = routes.get(headers[":path"] ?? "");
      if (!route) return false;
      return dispatch(route, streamExchange(stream, headers, options));
    },
  };

  function dispatch(route: UnaryRoute, exchange: Exchange): boolean {
    const contentType = exchange.headers["content-type"] ?? "";
    let answer: Promise<void>;
    if (grpcBinaryContentType.test(contentType)) {
      if (exchange.httpVersion !== 2) return false;
      answer = serveGrpc(route, exchange, options);
    } else {
      const type = connectProtocol.parseContentType(contentType);
      if (type === undefined || type.stream) return false;
      answer = serveConnect(route, exchange, type.binary, options);
    }
    served++;
    answer.catch(() => exchange.abandon());
    return true;
  }
}

function compatExchange(req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse, options: DirectUnaryOptions): Exchange {
  const http2Request = req instanceof http2.Http2ServerRequest ? req : undefined;
  return {
    headers: req.headers,
    url: () => `http://${http2Request ? http2Request.authority : req.headers.host}${req.url}`,
    httpVersion: http2Request ? 2 : 1,
    body: req,
    contextValues: options.contextValues(req.headers, req.socket?.remoteAddress),
    onClose: (listener) => res.once("close", listener),
    canAnswer: () => !res.headersSent && !res.destroyed && !http2Request?.stream.destroyed,
    answer(status, headers, body, trailers) {
      // The compatibility response asks for trailers on every HTTP/2 answer and sends what
      // addTrailers holds; headers the HTTP layer already set (CORS) go out with the call's own.
      if (trailers) (res as http2.Http2ServerResponse).addTrailers(trailers);
      (res as http.ServerResponse).writeHead(status, headers);
      if (body) (res as http.ServerResponse).end(body);
      else (res as http.ServerResponse).end();
    },
    abandon() {
      if (http2Request) {
        if (!http2Request.stream.destroyed) http2Request.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      } else req.socket.destroy();
    },
  };
}

function streamExchange(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, options: DirectUnaryOptions): Exchange {
  // A stream the client resets emits 'error'; unheard, that would end the process. The call
  // learns of it from 'close' (its signal aborts), as on the compatibility path.
  stream.on("error", () => undefined);
  return {
    headers,
    url: () => `http://${headers[":authority"] ?? headers.host}${headers[":path"]}`,
    httpVersion: 2,
    body: stream,
    contextValues: options.contextValues(headers, stream.session?.socket?.remoteAddress),
    onClose: (listener) => stream.once("close", listener),
    canAnswer: () => !stream.headersSent && !stream.destroyed,
    answer(status, responseHeaders, body, trailers) {
      stream.respond({ ...responseHeaders, ":status": status }, { waitForTrailers: trailers !== undefined });
      if (trailers) stream.once("wantTrailers", () => !stream.destroyed && stream.sendTrailers(trailers));
      if (body) stream.end(body);
      else stream.end();
    },
    abandon() {
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    },
  };
}

/** The reason a call's signal carries when the call ended normally (as the dependency patch gives connect-es's). */
const CALL_ENDED = new DOMException("This operation was aborted", "AbortError");

/** Finds a call's context from its request, wherever an interceptor passed it on. */
const directCallKey = createContextKey<DirectCall | undefined>(undefined, { description: "meshwork direct call" });

type DirectCall = HandlerContext & AbortHooks & {
  readonly requestHeader: RecordHeaders;
  readonly responseHeader: RecordHeaders;
  readonly responseTrailer: RecordHeaders;
  /** The request the interceptors start from. */
  request: UnaryRequest | undefined;
  /** Aborts the call's signal (once; the first reason stays), as connect-es's context does. */
  abort(reason?: unknown): void;
  /** Marks the answer as about to be written: from then on, the caller leaving is not a cancellation. */
  answering(): boolean;
};

/**
 * The handler context connect-es's `createHandlerContext` would build for this call, with the same
 * signal semantics (aborted with DEADLINE_EXCEEDED at the deadline, CANCELED when the caller goes
 * first, an AbortError once the call ends), built for what a unary call on this path needs:
 *
 * - the signal's AbortController is made only when someone reads `signal`; until then abort()
 *   only runs the hooks registered through call-abort.ts (the request gate's). Building a linked
 *   controller for every call, and aborting it with an Event at the end, was ~5 % of the CPU per
 *   call, and a unary handler rarely looks at its signal;
 * - headers are RecordHeaders over Node's own record instead of three undici Headers.
 */
function startCall(route: UnaryRoute, exchange: Exchange, protocolName: "grpc" | "connect", timeoutMs: number | undefined, responseHeader: Record<string, string>, responseTrailer: Record<string, string> | undefined): DirectCall {
  let controller: AbortController | undefined;
  let aborted = false;
  let reason: unknown;
  let answered = false;
  let deadline: NodeJS.Timeout | undefined;
  // Whole milliseconds, as connect-es keeps the deadline (a Date): grpc-timeout may be in µs or ns.
  const deadlineAt = timeoutMs === undefined ? undefined : Math.trunc(Date.now() + timeoutMs);
  const method = route.spec.method;
  const call: DirectCall = {
    method,
    service: method.parent,
    protocolName,
    requestMethod: "POST",
    get url() {
      return exchange.url();
    },
    requestHeader: RecordHeaders.fromNode(exchange.headers),
    responseHeader: new RecordHeaders(responseHeader),
    responseTrailer: new RecordHeaders(responseTrailer),
    values: exchange.contextValues,
    request: undefined,
    [abortHooks]: [],
    get signal() {
      if (!controller) {
        controller = new AbortController();
        if (aborted) controller.abort(reason);
      }
      return controller.signal;
    },
    timeoutMs: () => (deadlineAt === undefined ? undefined : deadlineAt - Date.now()),
    abort(abortReason?: unknown) {
      if (deadline !== undefined) clearTimeout(deadline);
      if (aborted) return;
      aborted = true;
      reason = abortReason ?? CALL_ENDED;
      // The hooks first: the gate's listener was registered before anything else could listen.
      for (const hook of call[abortHooks]) hook(reason);
      controller?.abort(reason);
    },
    answering() {
      answered = true;
      return exchange.canAnswer();
    },
  };
  if (timeoutMs !== undefined) {
    const expire = () => call.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
    if (timeoutMs <= 0) expire();
    else deadline = setTimeout(expire, timeoutMs);
  }
  // The call's signal ends when the exchange does, as connect-node's request signal does.
  exchange.onClose(() => {
    if (!answered) call.abort(new ConnectError("the client ended the call", Code.Canceled));
  });
  return call;
}

/** The implementation as the innermost step of the interceptor chain (connect-es's invokeUnaryImplementation). */
function implementationOf(spec: UnaryRoute["spec"]): (request: UnaryRequest) => Promise<UnaryResponse> {
  const output: DescMessage = spec.method.output;
  return async (request) => {
    const call = request.contextValues.get(directCallKey)!;
    // An interceptor may have passed on a request of its own: the handler sees what it carries.
    const context: HandlerContext = request === call.request ? call : { ...call, service: request.service, requestHeader: request.header, signal: request.signal, values: request.contextValues };
    const message = create(output, await spec.impl(request.message, context));
    return { stream: false, message, method: spec.method, service: spec.method.parent, header: call.responseHeader, trailer: call.responseTrailer } as UnaryResponse;
  };
}

/** Runs the interceptors and the implementation; the answer's headers and trailers end up in the call's. */
async function invoke(route: UnaryRoute, call: DirectCall, message: unknown): Promise<unknown> {
  call.values.set(directCallKey, call);
  const request = {
    stream: false,
    message,
    method: route.spec.method,
    service: call.service,
    requestMethod: "POST",
    get url() {
      return call.url;
    },
    get signal() {
      return call.signal;
    },
    header: call.requestHeader,
    contextValues: call.values,
  } as UnaryRequest;
  call.request = request;
  const response = await route.invoke(request);
  if (response.header !== call.responseHeader) copyHeaders(response.header, call.responseHeader);
  if (response.trailer !== call.responseTrailer) copyHeaders(response.trailer, call.responseTrailer);
  return response.message;
}

function copyHeaders(from: Headers, to: Headers): void {
  for (const key of [...to.keys()]) to.delete(key);
  from.forEach((value, key) => to.set(key, value));
}

/** gRPC (binary, HTTP/2): connect-es's protocol-grpc handler, with the body as one envelope. */
async function serveGrpc(route: UnaryRoute, exchange: Exchange, options: DirectUnaryOptions): Promise<void> {
  const timeout = grpcProtocol.parseTimeout(header(exchange, GRPC_TIMEOUT), maxTimeoutMs);
  const call = startCall(route, exchange, "grpc", timeout.timeoutMs, { "content-type": grpcProtocol.contentTypeProto }, { [grpcProtocol.headerGrpcStatus]: grpcProtocol.grpcStatusOk });
  const compression = compressionNegotiate(acceptCompression, header(exchange, GRPC_ENCODING), header(exchange, GRPC_ACCEPT_ENCODING), grpcProtocol.headerAcceptEncoding);
  if (compression.response) call.responseHeader.set(grpcProtocol.headerEncoding, compression.response.name);

  let body: Uint8Array | undefined;
  try {
    // The gate runs on the headers: a call it refuses is never read.
    await options.requestGate(call);
    const bytes = await readEnvelope(exchange.body, options.readMaxBytes);
    if (compression.error) throw compression.error;
    if (timeout.error) throw timeout.error;
    const envelope = await envelopeDecompress(bytes, compression.request, options.readMaxBytes);
    const input = route.serialization.getI(true).parse(envelope.data);
    const output = await invoke(route, call, input);
    const data = route.serialization.getO(true).serialize(output as never);
    if (compression.response) {
      const serialized = await envelopeCompress({ flags: 0, data }, compression.response, compressMinBytes);
      body = encodeEnvelope(serialized.flags, serialized.data);
    } else body = encodeEnvelope(0, data);
    call.abort();
  } catch (error) {
    // The gate listens for this abort: a body that did not decode becomes INVALID_ARGUMENT there.
    call.abort(error);
    grpcProtocol.setTrailerStatus(call.responseTrailer, error instanceof ConnectError ? error : new ConnectError("internal error", Code.Internal, undefined, undefined, error));
  }
  if (!call.answering()) return;
  exchange.answer(200, call.responseHeader.toNode(), body, call.responseTrailer.toNode());
}

/** Connect unary POST (binary or JSON): connect-es's protocol-connect unary handler. */
async function serveConnect(route: UnaryRoute, exchange: Exchange, binary: boolean, options: DirectUnaryOptions): Promise<void> {
  const timeout = connectProtocol.parseTimeout(header(exchange, CONNECT_TIMEOUT), maxTimeoutMs);
  const contentType = binary ? connectProtocol.contentTypeUnaryProto : connectProtocol.contentTypeUnaryJson;
  const call = startCall(route, exchange, "connect", timeout.timeoutMs, { "content-type": contentType }, undefined);
  const compression = compressionNegotiate(acceptCompression, header(exchange, CONNECT_ENCODING), header(exchange, CONNECT_ACCEPT_ENCODING), connectProtocol.headerUnaryAcceptEncoding);

  let status = 200;
  let body: Uint8Array;
  try {
    await options.requestGate(call);
    if (compression.error) throw compression.error;
    if (timeout.error) throw timeout.error;
    let bytes = await readBody(exchange.body, options.readMaxBytes, header(exchange, CONNECT_CONTENT_LENGTH));
    if (compression.request) bytes = await compression.request.decompress(bytes, options.readMaxBytes);
    const input = route.serialization.getI(binary).parse(bytes);
    const output = await invoke(route, call, input);
    body = route.serialization.getO(binary).serialize(output as never);
  } catch (error) {
    call.abort(error);
    const connectError = error instanceof ConnectError ? error : new ConnectError("internal error", Code.Internal, undefined, undefined, error);
    status = connectProtocol.codeToHttpStatus(connectError.code);
    call.responseHeader.set(connectProtocol.headerContentType, connectProtocol.contentTypeUnaryJson);
    if (!connectError.isWireError) mergeNonProtocolHeaders(call.responseHeader, connectError.metadata);
    body = connectProtocol.errorToJsonBytes(connectError, options.jsonOptions);
  } finally {
    call.abort();
  }
  if (compression.response && body.byteLength >= compressMinBytes) {
    body = await compression.response.compress(body);
    call.responseHeader.set(connectProtocol.headerUnaryEncoding, compression.response.name);
  }
  // connect-es's trailerMux: a unary answer carries its trailers as "trailer-" headers.
  const headers = call.responseHeader;
  call.responseTrailer.forEach((value, key) => headers.append(`trailer-${key}`, value));
  headers.set(connectProtocol.headerUnaryContentLength, body.byteLength.toString(10));
  if (!call.answering()) return;
  exchange.answer(status, headers.toNode(), body);
}

/**
 * Reads the request body as exactly one envelope, with connect-es's errors in connect-es's order
 * (its envelope decoder, then `ensureSingle`): a declared size above readMaxBytes is refused as
 * soon as its header arrives, before the message is buffered; a second envelope is refused once
 * it is complete; bytes left over at the end are an incomplete envelope.
 */
function readEnvelope(req: Readable, readMaxBytes: number): Promise<{ flags: number; data: Uint8Array }> {
  return new Promise((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    let settled = false;
    const settle = (error: ConnectError | undefined) => {
      settled = true;
      req.off("data", onData);
      if (error) {
        req.resume(); // drain what the client still sends; the answer does not wait for it
        reject(error);
      } else resolve({ flags: buffered[0]!, data: buffered.subarray(5, 5 + buffered.readUInt32BE(1)) });
    };
    /** The first problem connect-es would raise with what has arrived so far, if any. */
    const check = (ended: boolean): ConnectError | undefined => {
      let offset = 0;
      for (let index = 0; ; index++) {
        if (buffered.length - offset < 5) break;
        const size = buffered.readUInt32BE(offset + 1);
        if (size > readMaxBytes) return new ConnectError(`message size ${size} is larger than configured readMaxBytes ${readMaxBytes}`, Code.ResourceExhausted);
        if (buffered.length - offset - 5 < size) break;
        if (index === 1) return new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented);
        offset += 5 + size;
      }
      if (!ended) return undefined;
      if (buffered.length === 0) return new ConnectError("protocol error: missing input message for unary method", Code.Unimplemented);
      if (offset !== buffered.length) return new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
      return undefined;
    };
    const onData = (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const error = check(false);
      if (error) settle(error);
    };
    // A request that ended with its headers (END_STREAM, no body) may have ended before the gate let the body be read.
    if (req.readableEnded) return settle(check(true));
    req.on("data", onData);
    req.once("end", () => {
      if (!settled) settle(check(true));
    });
    req.once("error", (error) => {
      if (!settled) settle(new ConnectError(error.message, Code.Canceled));
    });
  });
}

/**
 * Reads a Connect unary body with connect-es's `readAllBytes` errors and limits: a declared
 * Content-Length above readMaxBytes is refused before anything is read, a body longer or shorter
 * than it declared is the caller's error, and an undeclared one is cut off at readMaxBytes.
 */
function readBody(req: Readable, readMaxBytes: number, contentLength: string | null): Promise<Uint8Array> {
  const declared = contentLength === null ? undefined : Number.parseInt(contentLength, 10);
  const hint = declared !== undefined && Number.isSafeInteger(declared) && declared >= 0 ? declared : undefined;
  return new Promise((resolve, reject) => {
    if (hint !== undefined && hint > readMaxBytes) {
      req.resume();
      return reject(new ConnectError(`message size ${hint} is larger than configured readMaxBytes ${readMaxBytes}`, Code.ResourceExhausted));
    }
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const fail = (error: ConnectError) => {
      settled = true;
      req.off("data", onData);
      req.resume();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (hint !== undefined && received > hint) return fail(new ConnectError(`protocol error: promised ${hint} bytes, received ${received}`, Code.InvalidArgument));
      if (hint === undefined && received > readMaxBytes) return fail(new ConnectError(`message size is larger than configured readMaxBytes ${readMaxBytes}`, Code.ResourceExhausted));
      chunks.push(chunk);
    };
    if (req.readableEnded) return onEnd();
    req.on("data", onData);
    req.once("end", onEnd);
    function onEnd() {
      if (settled) return;
      if (hint !== undefined && received < hint) return reject(new ConnectError(`protocol error: promised ${hint} bytes, received ${received}`, Code.InvalidArgument));
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received));
    }
    req.once("error", (error) => {
      if (!settled) fail(new ConnectError(error.message, Code.Canceled));
    });
  });
}

/** The request headers the path reads, as Node names them (lowercase). */
const GRPC_TIMEOUT = grpcProtocol.headerTimeout.toLowerCase();
const GRPC_ENCODING = grpcProtocol.headerEncoding.toLowerCase();
const GRPC_ACCEPT_ENCODING = grpcProtocol.headerAcceptEncoding.toLowerCase();
const CONNECT_TIMEOUT = connectProtocol.headerTimeout.toLowerCase();
const CONNECT_ENCODING = connectProtocol.headerUnaryEncoding.toLowerCase();
const CONNECT_ACCEPT_ENCODING = connectProtocol.headerUnaryAcceptEncoding.toLowerCase();
const CONNECT_CONTENT_LENGTH = connectProtocol.headerUnaryContentLength.toLowerCase();

function header(exchange: Exchange, lowercaseName: string): string | null {
  const value = exchange.headers[lowercaseName];
  return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
}

import http from "node:http";
import http2 from "node:http2";
import type { Readable } from "node:stream";
import type { DescMethod, DescMethodUnary, DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createHandlerContext,
  createMethodImplSpec,
  createServiceImplSpec,
  type ConnectRouter,
  type ContextValues,
  type Interceptor,
  type MethodImplSpec,
} from "@connectrpc/connect";
import {
  compressionNegotiate,
  createMethodSerializationLookup,
  encodeEnvelope,
  envelopeCompress,
  envelopeDecompress,
  invokeUnaryImplementation,
  mergeNonProtocolHeaders,
  type Compression,
} from "@connectrpc/connect/protocol";
import * as connectProtocol from "@connectrpc/connect/protocol-connect";
import * as grpcProtocol from "@connectrpc/connect/protocol-grpc";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import type { JsonRequestOptions, RequestGate } from "./gate.ts";

/**
 * Unary calls served straight from Node's request and response, through the same request gate,
 * interceptors and implementations as connect-node, built from connect-es's own protocol pieces
 * (content types, timeouts, compression negotiation, envelopes, serialization limits, error
 * encodings, `invokeUnaryImplementation`), so every answer is the one connect-node would give.
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
  url: string;
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
    routes.set(path, { spec, serialization: createMethodSerializationLookup(spec.method as DescMethodUnary, undefined, options.jsonOptions, limits) });
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
    url: `http://${http2Request ? http2Request.authority : req.headers.host}${req.url}`,
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
    url: `http://${headers[":authority"] ?? headers.host}${headers[":path"]}`,
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

/** The handler context connect-node would create for this call, and the answer's bookkeeping. */
function startCall(route: UnaryRoute, exchange: Exchange, protocolName: "grpc" | "connect", timeoutMs: number | undefined, responseHeader: Record<string, string>, responseTrailer: Record<string, string>) {
  // The call's signal ends when the exchange does, as connect-node's request signal does.
  const requestAbort = new AbortController();
  let answered = false;
  exchange.onClose(() => {
    if (!answered) requestAbort.abort(new ConnectError("the client ended the call", Code.Canceled));
  });
  const context = createHandlerContext({
    ...route.spec,
    service: route.spec.method.parent,
    protocolName,
    requestMethod: "POST",
    url: exchange.url,
    timeoutMs,
    requestSignal: requestAbort.signal,
    requestHeader: requestHeaders(exchange.headers),
    responseHeader,
    responseTrailer,
    contextValues: exchange.contextValues,
  });
  /** Whether the answer can still be written (the caller may have gone). */
  const canAnswer = () => {
    answered = true;
    return exchange.canAnswer();
  };
  return { context, canAnswer };
}

/** gRPC (binary, HTTP/2): connect-es's protocol-grpc handler, with the body as one envelope. */
async function serveGrpc(route: UnaryRoute, exchange: Exchange, options: DirectUnaryOptions): Promise<void> {
  const timeout = grpcProtocol.parseTimeout(header(exchange, grpcProtocol.headerTimeout), maxTimeoutMs);
  const { context, canAnswer } = startCall(route, exchange, "grpc", timeout.timeoutMs, { "content-type": grpcProtocol.contentTypeProto }, { [grpcProtocol.headerGrpcStatus]: grpcProtocol.grpcStatusOk });
  const compression = compressionNegotiate(acceptCompression, header(exchange, grpcProtocol.headerEncoding), header(exchange, grpcProtocol.headerAcceptEncoding), grpcProtocol.headerAcceptEncoding);
  if (compression.response) context.responseHeader.set(grpcProtocol.headerEncoding, compression.response.name);

  let body: Uint8Array | undefined;
  try {
    // The gate runs on the headers: a call it refuses is never read.
    await options.requestGate(context);
    const bytes = await readEnvelope(exchange.body, options.readMaxBytes);
    if (compression.error) throw compression.error;
    if (timeout.error) throw timeout.error;
    const envelope = await envelopeDecompress(bytes, compression.request, options.readMaxBytes);
    const input = route.serialization.getI(true).parse(envelope.data);
    const output = await invokeUnaryImplementation(route.spec, context, input, options.interceptors);
    const serialized = await envelopeCompress({ flags: 0, data: route.serialization.getO(true).serialize(output) }, compression.response, compressMinBytes);
    body = encodeEnvelope(serialized.flags, serialized.data);
    context.abort();
  } catch (error) {
    // The gate listens for this abort: a body that did not decode becomes INVALID_ARGUMENT there.
    context.abort(error);
    grpcProtocol.setTrailerStatus(context.responseTrailer, error instanceof ConnectError ? error : new ConnectError("internal error", Code.Internal, undefined, undefined, error));
  }
  if (!canAnswer()) return;
  exchange.answer(200, nodeHeaders(context.responseHeader), body, nodeHeaders(context.responseTrailer));
}

/** Connect unary POST (binary or JSON): connect-es's protocol-connect unary handler. */
async function serveConnect(route: UnaryRoute, exchange: Exchange, binary: boolean, options: DirectUnaryOptions): Promise<void> {
  const timeout = connectProtocol.parseTimeout(header(exchange, connectProtocol.headerTimeout), maxTimeoutMs);
  const contentType = binary ? connectProtocol.contentTypeUnaryProto : connectProtocol.contentTypeUnaryJson;
  const { context, canAnswer } = startCall(route, exchange, "connect", timeout.timeoutMs, { "content-type": contentType }, {});
  const compression = compressionNegotiate(acceptCompression, header(exchange, connectProtocol.headerUnaryEncoding), header(exchange, connectProtocol.headerUnaryAcceptEncoding), connectProtocol.headerUnaryAcceptEncoding);

  let status = 200;
  let body: Uint8Array;
  try {
    await options.requestGate(context);
    if (compression.error) throw compression.error;
    if (timeout.error) throw timeout.error;
    let bytes = await readBody(exchange.body, options.readMaxBytes, header(exchange, connectProtocol.headerUnaryContentLength));
    if (compression.request) bytes = await compression.request.decompress(bytes, options.readMaxBytes);
    const input = route.serialization.getI(binary).parse(bytes);
    const output = await invokeUnaryImplementation(route.spec, context, input, options.interceptors);
    body = route.serialization.getO(binary).serialize(output);
  } catch (error) {
    context.abort(error);
    const connectError = error instanceof ConnectError ? error : new ConnectError("internal error", Code.Internal, undefined, undefined, error);
    status = connectProtocol.codeToHttpStatus(connectError.code);
    context.responseHeader.set(connectProtocol.headerContentType, connectProtocol.contentTypeUnaryJson);
    if (!connectError.isWireError) mergeNonProtocolHeaders(context.responseHeader, connectError.metadata);
    body = connectProtocol.errorToJsonBytes(connectError, options.jsonOptions);
  } finally {
    context.abort();
  }
  if (compression.response && body.byteLength >= compressMinBytes) {
    body = await compression.response.compress(body);
    context.responseHeader.set(connectProtocol.headerUnaryEncoding, compression.response.name);
  }
  const headers = connectProtocol.trailerMux(context.responseHeader, context.responseTrailer);
  headers.set(connectProtocol.headerUnaryContentLength, body.byteLength.toString(10));
  if (!canAnswer()) return;
  exchange.answer(status, nodeHeaders(headers), body);
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

function header(exchange: Exchange, name: string): string | null {
  const value = exchange.headers[name.toLowerCase()];
  return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
}

/** Request headers as the handler context sees them in connect-node: pseudo-headers left out. */
function requestHeaders(headers: http.IncomingHttpHeaders): Headers {
  const result = new Headers();
  for (const [key, value] of Object.entries(headers)) {
    if (key.startsWith(":") || value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) result.append(key, item);
    else result.set(key, value);
  }
  return result;
}

function nodeHeaders(headers: Headers): http2.OutgoingHttpHeaders {
  const result: http2.OutgoingHttpHeaders = {};
  headers.forEach((value, key) => {
    result[key] = value;
  });
  return result;
}


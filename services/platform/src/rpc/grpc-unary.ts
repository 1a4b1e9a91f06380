import http2 from "node:http2";
import type { DescMethod, DescMethodUnary, DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
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
  type Compression,
} from "@connectrpc/connect/protocol";
import {
  contentTypeProto,
  headerAcceptEncoding,
  headerEncoding,
  headerGrpcStatus,
  headerTimeout,
  parseTimeout,
  setTrailerStatus,
} from "@connectrpc/connect/protocol-grpc";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import type { RequestGate } from "./gate.ts";

/**
 * Unary gRPC calls served on the HTTP/2 stream itself, through the same request gate,
 * interceptors and implementations as connect-node, with connect-es's own protocol pieces
 * (content type, timeout, compression negotiation, envelopes, serialization limits, trailer
 * status, `invokeUnaryImplementation`).
 *
 * Why: connect-node runs every gRPC call, unary ones included, through its streaming pipeline
 * (a chain of async generators per call) and writes the answer through Node's HTTP/2
 * compatibility response with a trailers hand-off; the same server answered Connect calls 2.7x
 * faster than gRPC ones (docs/performance.md). Here a unary call is one body read, one parse,
 * the interceptor chain, one `respond` with `waitForTrailers` and one write.
 *
 * Only what this path can answer exactly as connect-node would takes it: a POST with a binary
 * gRPC content type to a unary method registered without per-service options. Everything else
 * (gRPC JSON, streaming methods, gRPC-Web, Connect, HTTP/1.1) stays on connect-node. The Connect
 * conformance suite's gRPC cases run through this path (`make test-conformance`).
 */
export interface GrpcUnaryOptions {
  interceptors: Interceptor[];
  requestGate: RequestGate;
  readMaxBytes: number;
  contextValues: (req: http2.Http2ServerRequest) => ContextValues;
}

export interface GrpcUnaryRoutes {
  /** Wraps the server's route registration so unary methods are recorded as they are registered. */
  record(routes: (router: ConnectRouter) => void): (router: ConnectRouter) => void;
  /** Calls served so far. */
  readonly served: number;
  /** Serves the call and returns true, or returns false and leaves it untouched for connect-node. */
  serve(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): boolean;
}

interface UnaryRoute {
  spec: MethodImplSpec & { kind: "unary" };
  serialization: ReturnType<typeof createMethodSerializationLookup>;
}

/** connect-node's defaults for a server (connect-node-adapter.ts, universal-handler.ts). */
const acceptCompression: Compression[] = [compressionGzip, compressionBrotli];
const compressMinBytes = 1024;
const maxTimeoutMs = Number.MAX_SAFE_INTEGER;
const binaryContentType = /^application\/grpc(?:\+proto)?$/i;

export function grpcUnaryRoutes(options: GrpcUnaryOptions): GrpcUnaryRoutes {
  const routes = new Map<string, UnaryRoute>();
  let served = 0;
  const limits = { readMaxBytes: options.readMaxBytes, writeMaxBytes: 0xffffffff };

  const add = (path: string, spec: MethodImplSpec) => {
    if (spec.kind !== "unary") return;
    routes.set(path, { spec, serialization: createMethodSerializationLookup(spec.method as DescMethodUnary, undefined, undefined, limits) });
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
      if (req.method !== "POST") return false;
      const contentType = req.headers["content-type"];
      if (contentType === undefined || !binaryContentType.test(contentType)) return false;
      const route = routes.get(req.url);
      if (!route) return false;
      served++;
      handle(route, req, res, options).catch(() => {
        // Only a bug in this file gets here (every call error is answered inside handle): end
        // the stream rather than leave the caller waiting.
        if (!req.stream.destroyed) req.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      });
      return true;
    },
  };
}

async function handle(route: UnaryRoute, req: http2.Http2ServerRequest, res: http2.Http2ServerResponse, options: GrpcUnaryOptions): Promise<void> {
  const requestAbort = new AbortController();
  let answered = false;
  req.once("close", () => {
    if (!answered) requestAbort.abort(new ConnectError("the client ended the call", Code.Canceled));
  });
  const timeout = parseTimeout(header(req, headerTimeout), maxTimeoutMs);
  const context = createHandlerContext({
    ...route.spec,
    service: route.spec.method.parent,
    protocolName: "grpc",
    requestMethod: "POST",
    url: `http://${req.authority}${req.url}`,
    timeoutMs: timeout.timeoutMs,
    requestSignal: requestAbort.signal,
    requestHeader: requestHeaders(req.headers),
    responseHeader: { "content-type": contentTypeProto },
    responseTrailer: { [headerGrpcStatus]: "0" },
    contextValues: options.contextValues(req) ?? createContextValues(),
  });
  const compression = compressionNegotiate(acceptCompression, header(req, headerEncoding), header(req, headerAcceptEncoding), headerAcceptEncoding);
  if (compression.response) context.responseHeader.set(headerEncoding, compression.response.name);

  let body: Uint8Array | undefined;
  try {
    // The gate runs on the headers: a call it refuses is never read.
    await options.requestGate(context);
    const bytes = await readEnvelope(req, options.readMaxBytes);
    if (compression.error) throw compression.error;
    if (timeout.error) throw timeout.error;
    const envelope = await envelopeDecompress(bytes, compression.request, options.readMaxBytes);
    const input = route.serialization.getI(true).parse(envelope.data);
    const output = await invokeUnaryImplementation(route.spec, context, input, options.interceptors);
    const serialized = await envelopeCompress({ flags: 0, data: route.serialization.getO(true).serialize(output) }, compression.response, compressMinBytes);
    body = encodeEnvelope(serialized.flags, serialized.data);
    context.abort();
  } catch (error) {
    const connectError = error instanceof ConnectError ? error : new ConnectError("internal error", Code.Internal, undefined, undefined, error);
    // The gate listens for this abort: a body that did not decode becomes INVALID_ARGUMENT there.
    context.abort(connectError);
    setTrailerStatus(context.responseTrailer, connectError);
  }
  answered = true;
  if (req.stream.destroyed || res.headersSent) return;
  // The compatibility response asks for trailers on every answer and sends what addTrailers
  // holds; headers the HTTP layer already set (CORS) go out with the call's own.
  res.addTrailers(nodeHeaders(context.responseTrailer));
  res.writeHead(200, nodeHeaders(context.responseHeader));
  if (body) res.end(body);
  else res.end();
}

/**
 * Reads the request body as exactly one envelope, with connect-es's errors in connect-es's order
 * (its envelope decoder, then `ensureSingle`): a declared size above readMaxBytes is refused as
 * soon as its header arrives, before the message is buffered; a second envelope is refused once
 * it is complete; bytes left over at the end are an incomplete envelope.
 */
function readEnvelope(req: http2.Http2ServerRequest, readMaxBytes: number): Promise<{ flags: number; data: Uint8Array }> {
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
    req.on("data", onData);
    req.once("end", () => {
      if (!settled) settle(check(true));
    });
    req.once("error", (error) => {
      if (!settled) settle(new ConnectError(error.message, Code.Canceled));
    });
  });
}

function header(req: http2.Http2ServerRequest, name: string): string | null {
  const value = req.headers[name.toLowerCase()];
  return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
}

/** Request headers as the handler context sees them in connect-node: pseudo-headers left out. */
function requestHeaders(headers: http2.IncomingHttpHeaders): Headers {
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


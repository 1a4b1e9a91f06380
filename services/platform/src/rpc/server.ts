import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createContextValues } from "@connectrpc/connect";
import { clientAddressKey, clientAddressOf } from "./client-address.ts";
import type { JsonRequestOptions, RequestGate } from "./gate.ts";
import { withCors } from "./cors.ts";
import { noStoreByDefault } from "./cache-control.ts";
import { directUnaryRoutes } from "./direct-unary.ts";

export interface RpcServerOptions {
  host: string;
  port: number;
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  /** Runs on the headers before the body is read (rpc/gate.ts). */
  requestGate: RequestGate;
  jsonOptions: JsonRequestOptions;
  readMaxBytes: number;
  /** Proxies in front that append to X-Forwarded-For (client-address.ts); 0 trusts only the socket. */
  trustedProxyHops?: number;
  /** Browser origins allowed to call (CORS); none when empty. */
  allowedOrigins?: readonly string[];
  /** Unary gRPC and Connect POSTs on the direct path (direct-unary.ts); false leaves every call to connect-node. */
  directUnary?: boolean;
}

export interface RpcServer {
  port: number;
  /** Unary calls served on the direct path so far (direct-unary.ts). */
  readonly directUnaryCalls: number;
  /** Stops accepting, lets in-flight calls finish within `graceMs`, then closes what is left. */
  close(graceMs: number): Promise<void>;
}

const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0");

/**
 * One port for gRPC, gRPC-Web and Connect. Node's cleartext HTTP/2 server refuses HTTP/1.1 even
 * with allowHTTP1, so a plain TCP server peeks at each connection's first bytes: the HTTP/2
 * preface goes to the http2 server, anything else to the HTTP/1.1 server (Connect JSON and
 * gRPC-Web from browsers and curl).
 */
export async function startRpcServer(options: RpcServerOptions): Promise<RpcServer> {
  const contextValues = (headers: http.IncomingHttpHeaders, remoteAddress: string | undefined) =>
    createContextValues().set(clientAddressKey, clientAddress(headers, remoteAddress, options.trustedProxyHops ?? 0));
  const directUnary = directUnaryRoutes({
    interceptors: options.interceptors,
    requestGate: options.requestGate,
    readMaxBytes: options.readMaxBytes,
    jsonOptions: options.jsonOptions,
    contextValues,
  });
  const connectHandler = connectNodeAdapter({
    routes: directUnary.record(options.routes),
    interceptors: options.interceptors,
    requestGate: options.requestGate,
    jsonOptions: options.jsonOptions,
    readMaxBytes: options.readMaxBytes,
    contextValues: (req) => contextValues(req.headers, req.socket?.remoteAddress),
  });
  const directUnaryOn = options.directUnary ?? true;
  // Unary POSTs take the direct path (direct-unary.ts); everything else is connect-node's.
  const protocolHandler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
    if (directUnaryOn && directUnary.serve(req, res)) return;
    connectHandler(req as http.IncomingMessage, res as http.ServerResponse);
  };
  const handler = withCors(noStoreByDefault(protocolHandler), options.allowedOrigins ?? []);
  let inFlight = 0;
  let drained: (() => void) | undefined;
  /** Counts a call until `exchange` (its response, or its HTTP/2 stream) closes: close() waits for them. */
  const track = (exchange: { once(event: "close", listener: () => void): unknown }) => {
    inFlight++;
    exchange.once("close", () => {
      inFlight--;
      if (inFlight === 0) drained?.();
    });
  };
  const tracked = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
    track(res);
    handler(req as http.IncomingMessage, res as http.ServerResponse);
  };
  const h2 = http2.createServer({}, tracked);
  if (directUnaryOn) {
    // A unary POST over HTTP/2 is served on its stream, before Node's compatibility layer wraps it
    // in a request and a response (a third of the remaining per-call cost in the profile);
    // every other stream goes on to that layer, as registered by createServer. A call from a
    // browser (Origin) keeps the compatibility path, where CORS sets its headers.
    const compatibility = h2.listeners("stream") as ((...args: unknown[]) => void)[];
    h2.removeAllListeners("stream");
    h2.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, ...rest: unknown[]) => {
      if (headers.origin === undefined && directUnary.serveStream(stream, headers)) return track(stream);
      for (const listener of compatibility) listener.call(h2, stream, headers, ...rest);
    });
  }
  const h1 = http.createServer(tracked);
  h1.keepAliveTimeout = 65_000;
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });

  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((socket) => {
    // RPCs are small request/response exchanges: Nagle's algorithm plus delayed ACKs would add
    // ~40 ms to many of them (measured in bench/rpc.ts).
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    routeByPreface(socket, (isHttp2, peeked) => {
      // The peeked bytes go back into the socket's read buffer. The http2 session takes over the
      // socket's native handle and first consumes what is buffered, so it gets the whole preface
      // without a JavaScript stream in between (a relaying Duplex cost ~40 us per call). Resuming
      // the socket here would let its own 'data' flow race the session for those bytes.
      socket.unshift(peeked);
      if (isHttp2) h2.emit("connection", socket);
      else {
        h1.emit("connection", socket);
        socket.resume();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once("error", reject);
    tcp.listen(options.port, options.host, () => resolve());
  });
  const address = tcp.address() as net.AddressInfo;

  return {
    port: address.port,
    get directUnaryCalls() {
      return directUnary.served;
    },
    async close(graceMs) {
      const deadline = Date.now() + graceMs;
      const untilDeadline = () => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())).unref());
      tcp.close();
      // An HTTP/2 session closed gracefully (GOAWAY) ends its socket itself once its last stream is
      // done and everything written has been flushed. Destroying the socket as soon as the last
      // handler returned would drop answers still in its write buffer, and a GOAWAY not yet sent:
      // the client would see a call that ran fail with CANCEL or ECONNRESET.
      const sessionsEnded = Promise.all([...sessions].map((session) => new Promise<void>((resolve) => (session.closed && session.destroyed ? resolve() : session.once("close", () => resolve())))));
      for (const session of sessions) session.close();
      h1.closeIdleConnections();
      if (inFlight > 0) await Promise.race([new Promise<void>((resolve) => (drained = resolve)), untilDeadline()]);
      await Promise.race([sessionsEnded, untilDeadline()]);
      h1.closeAllConnections();
      for (const socket of sockets) socket.destroy();
    },
  };
}

function routeByPreface(socket: net.Socket, route: (isHttp2: boolean, peeked: Buffer) => void): void {
  let seen = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const compared = Math.min(seen.length, HTTP2_PREFACE.length);
    const isHttp2Prefix = seen.subarray(0, compared).equals(HTTP2_PREFACE.subarray(0, compared));
    if (isHttp2Prefix && seen.length < HTTP2_PREFACE.length) return;
    socket.off("data", onData);
    socket.pause();
    route(isHttp2Prefix, seen);
  };
  socket.on("data", onData);
}

function clientAddress(headers: http.IncomingHttpHeaders, remoteAddress: string | undefined, trustedProxyHops: number): string {
  const forwarded = headers["x-forwarded-for"];
  return clientAddressOf(Array.isArray(forwarded) ? forwarded.join(",") : forwarded, remoteAddress ?? "unknown", trustedProxyHops);
}

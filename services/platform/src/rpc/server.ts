import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { Duplex } from "node:stream";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createContextValues } from "@connectrpc/connect";
import { clientAddressKey } from "./client-address.ts";
import type { JsonRequestOptions, RequestGate } from "./gate.ts";
import { withCors } from "./cors.ts";

export interface RpcServerOptions {
  host: string;
  port: number;
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  /** Runs on the headers before the body is read (rpc/gate.ts). */
  requestGate: RequestGate;
  jsonOptions: JsonRequestOptions;
  readMaxBytes: number;
  /** Trust X-Forwarded-For (behind the mesh gateway) when naming the client's address. */
  trustForwardedFor?: boolean;
  /** Browser origins allowed to call (CORS); none when empty. */
  allowedOrigins?: readonly string[];
}

export interface RpcServer {
  port: number;
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
  const connectHandler = connectNodeAdapter({
    routes: options.routes,
    interceptors: options.interceptors,
    requestGate: options.requestGate,
    jsonOptions: options.jsonOptions,
    readMaxBytes: options.readMaxBytes,
    contextValues: (req) => createContextValues().set(clientAddressKey, clientAddress(req, options.trustForwardedFor ?? false)),
  });
  const handler = withCors(connectHandler, options.allowedOrigins ?? []);
  let inFlight = 0;
  let drained: (() => void) | undefined;
  const tracked = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
    inFlight++;
    res.once("close", () => {
      inFlight--;
      if (inFlight === 0) drained?.();
    });
    handler(req as http.IncomingMessage, res as http.ServerResponse);
  };
  const h2 = http2.createServer({}, tracked);
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
      if (isHttp2) h2.emit("connection", replayingStream(socket, peeked));
      else {
        socket.unshift(peeked);
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
    async close(graceMs) {
      tcp.close();
      for (const session of sessions) session.close();
      h1.closeIdleConnections();
      if (inFlight > 0) {
        await Promise.race([
          new Promise<void>((resolve) => (drained = resolve)),
          new Promise<void>((resolve) => setTimeout(resolve, graceMs)),
        ]);
      }
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

/**
 * Node's http2 server reads from a net.Socket's native handle, which would skip the bytes we
 * already peeked at; a Duplex that yields them first and then relays the socket keeps them.
 */
function replayingStream(socket: net.Socket, peeked: Buffer): Duplex {
  const stream = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(error, callback) {
      socket.destroy(error ?? undefined);
      callback(error);
    },
  });
  Object.defineProperty(stream, "remoteAddress", { value: socket.remoteAddress });
  stream.push(peeked);
  socket.on("data", (chunk: Buffer) => {
    if (!stream.push(chunk)) socket.pause();
  });
  socket.on("end", () => stream.push(null));
  socket.on("close", () => stream.destroy());
  socket.on("error", (error) => stream.destroy(error));
  return stream;
}

function clientAddress(req: http.IncomingMessage | http2.Http2ServerRequest, trustForwardedFor: boolean): string {
  if (trustForwardedFor) {
    const forwarded = req.headers["x-forwarded-for"];
    const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(",")[0]?.trim();
    if (first) return first;
  }
  // For HTTP/2 the socket is the replaying stream, which carries the peer's address itself.
  const socket = req.socket as (net.Socket & { stream?: { remoteAddress?: string } }) | undefined;
  return socket?.remoteAddress ?? socket?.stream?.remoteAddress ?? "unknown";
}

/**
 * Experiment only, never used by the services themselves: loaded into a service with
 * `--import ./bench/lib/nodelay-preload.ts` it turns Nagle's algorithm off (TCP_NODELAY) on every
 * socket a net.Server accepts. The platform's RPC port is a plain net.Server that peeks at the
 * first bytes and hands the socket to http2/http; net.Server sockets keep Nagle on by default, and
 * small HTTP/2 frames written back to back then wait for the client's delayed ACK (~40 ms).
 * The benchmarks run with and without this to show what the one-line fix in the platform is worth.
 */
import net from "node:net";

const createServer = net.createServer;
net.createServer = function (this: unknown, ...args: unknown[]) {
  const server = (createServer as (...a: unknown[]) => net.Server).apply(this, args);
  server.on("connection", (socket: net.Socket) => socket.setNoDelay(true));
  return server;
} as typeof net.createServer;

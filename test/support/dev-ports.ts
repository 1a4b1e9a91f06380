import net from "node:net";
import { DEFAULT_PORTS } from "../../scripts/lib/system.ts";

/**
 * An offset that moves every port of `make dev` onto ports free right now. The shifted RPC ports
 * land in Linux's ephemeral range, where outgoing connections also take ports, so check first.
 */
export async function freeOffset(): Promise<number> {
  const ports = [4222, ...Object.values(DEFAULT_PORTS).flatMap(({ rpc, admin }) => [rpc, admin])];
  for (;;) {
    const offset = 1_000 + Math.floor(Math.random() * 5_000);
    const free = await Promise.all(ports.map((port) => isFree(port + offset)));
    if (free.every(Boolean)) return offset;
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

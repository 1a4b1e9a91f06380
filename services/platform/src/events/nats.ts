import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../logger.ts";

export interface NatsHandle {
  connection: NatsConnection;
  isConnected(): boolean;
  drain(): Promise<void>;
}

/**
 * Connects and keeps reconnecting forever: a NATS outage must degrade a service (readiness goes
 * false, the outbox fills), never kill it.
 */
export async function connectNats(options: {
  url: string;
  name: string;
  user?: string;
  password?: string;
  log: Logger;
}): Promise<NatsHandle> {
  const connection = await connect({
    servers: options.url.split(","),
    name: options.name,
    user: options.user,
    pass: options.password,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
    pingInterval: 5_000,
    maxPingOut: 2,
  });
  let connected = true;
  void (async () => {
    for await (const status of connection.status()) {
      if (status.type === "disconnect") {
        connected = false;
        options.log.warn({ server: status.server }, "NATS disconnected");
      } else if (status.type === "reconnect") {
        connected = true;
        options.log.info({ server: status.server }, "NATS reconnected");
      }
    }
  })();
  options.log.info({ url: options.url }, "connected to NATS");
  return {
    connection,
    isConnected: () => connected && !connection.isClosed(),
    drain: async () => {
      if (!connection.isClosed()) await connection.drain();
    },
  };
}

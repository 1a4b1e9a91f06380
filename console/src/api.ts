import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { AuditService, DeadLetterService } from "@meshwork/proto/meshwork/audit/v1/audit_pb.js";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { OrdersService } from "@meshwork/proto/meshwork/orders/v1/orders_pb.js";
import { PresenceService } from "@meshwork/proto/meshwork/presence/v2/presence_pb.js";
import { currentSession, endSession } from "./session.ts";

/** Adds the in-memory token; an Unauthenticated answer to a signed-in call ends the session. */
const auth: Interceptor = (next) => async (req) => {
  const session = currentSession();
  if (session) req.header.set("authorization", `Bearer ${session.token}`);
  try {
    return await next(req);
  } catch (error) {
    if (session && ConnectError.from(error).code === Code.Unauthenticated) endSession("The services no longer accept your session: sign in again.");
    throw error;
  }
};

// Same origin: console/server.ts (make dev) or the gateway (a cluster) routes each
// /<package>.<Service>/<Method> to its service.
const transport = createConnectTransport({ baseUrl: window.location.origin, interceptors: [auth] });

export const identity = createClient(IdentityService, transport);
export const presence = createClient(PresenceService, transport);
export const audit = createClient(AuditService, transport);
export const deadLetters = createClient(DeadLetterService, transport);
export const orders = createClient(OrdersService, transport);

export function describeError(error: unknown): string {
  const connectError = ConnectError.from(error);
  return `${Code[connectError.code] ?? connectError.code}: ${connectError.rawMessage}`;
}

/** What console/server.ts tells the app at start. */
export interface ConsoleConfig {
  traceUiUrl: string;
  traceTree: boolean;
  deprecatedCalls: boolean;
}

export async function loadConfig(): Promise<ConsoleConfig> {
  const answer = await fetch("/config.json").catch(() => undefined);
  if (!answer?.ok) return { traceUiUrl: "", traceTree: false, deprecatedCalls: false };
  return (await answer.json()) as ConsoleConfig;
}

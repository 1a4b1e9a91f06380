import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { Logger } from "../logger.ts";
import { PUBLIC, type AccessTable } from "./access.ts";
import { InvalidTokenError, type Principal, type TokenVerifier } from "./verifier.ts";

/** The verified caller, for handlers: `ctx.values.get(principalKey)`. Undefined on public calls without a token. */
export const principalKey = createContextKey<Principal | undefined>(undefined, { description: "meshwork principal" });

/**
 * Verifies the bearer token and applies the service's access table, from the call's headers
 * alone: it runs in the request gate (rpc/gate.ts), before Connect reads the body, so a call
 * without a valid token to a non-public method is refused without being parsed. The same for
 * gRPC, gRPC-Web and Connect. A method missing from the table is denied.
 */
export function authorizeCall(table: AccessTable, verify: TokenVerifier, log: Logger): (context: HandlerContext) => Promise<void> {
  return async (context) => {
    const path = `/${context.service.typeName}/${context.method.name}`;
    const rule = table.methods[path];
    if (rule === undefined) {
      log.warn({ path }, "denied: method not in the access table");
      throw new ConnectError("permission denied", Code.PermissionDenied);
    }
    const token = bearerToken(context.requestHeader.get("authorization"));
    if (rule === PUBLIC) {
      if (token) context.values.set(principalKey, await verify(token).catch(() => undefined));
      return;
    }
    if (!token) throw new ConnectError("missing bearer token", Code.Unauthenticated);
    let principal: Principal;
    try {
      principal = await verify(token);
    } catch (error) {
      if (error instanceof InvalidTokenError) throw new ConnectError("invalid token", Code.Unauthenticated);
      throw new ConnectError("token verification unavailable", Code.Unavailable);
    }
    if (!principal.roles.some((role) => rule.includes(role))) {
      throw new ConnectError("permission denied", Code.PermissionDenied);
    }
    context.values.set(principalKey, principal);
  };
}

/** The caller a handler may assume exists: the request gate has already refused anonymous calls. */
export function requirePrincipal(ctx: HandlerContext): Principal {
  const principal = ctx.values.get(principalKey);
  if (!principal) throw new ConnectError("unauthenticated", Code.Unauthenticated);
  return principal;
}

function bearerToken(header: string | null): string | undefined {
  const match = header?.match(/^Bearer\s+(\S+)$/i);
  return match?.[1];
}

import type http from "node:http";
import type http2 from "node:http2";
import type { Interceptor } from "@connectrpc/connect";

type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

/**
 * Cache-Control on Connect GET answers (methods marked `idempotency_level = NO_SIDE_EFFECTS`),
 * the only ones an HTTP cache could keep. Every GET starts as `no-store` (noStoreByDefault), so
 * refusals, errors and anything that depends on the caller's token are never kept; a successful
 * answer that is the same for everyone gets the policy its service names in `policies` (by RPC
 * path).
 */
export function cacheControlInterceptor(policies: Record<string, string>): Interceptor {
  return (next) => async (req) => {
    const policy = req.requestMethod === "GET" ? policies[`/${req.service.typeName}/${req.method.name}`] : undefined;
    const res = await next(req);
    if (policy) res.header.set("cache-control", policy);
    return res;
  };
}

/**
 * `Cache-Control: no-store` on every GET before Connect handles it, including calls the request
 * gate refuses before any interceptor runs; headers the answer sets itself take precedence.
 */
export function noStoreByDefault(handler: Handler): Handler {
  return (req, res) => {
    if (req.method === "GET") res.setHeader("Cache-Control", "no-store");
    handler(req, res);
  };
}

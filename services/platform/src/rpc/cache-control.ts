import { ConnectError, type Interceptor } from "@connectrpc/connect";

/** What a read that depends on who asks gets: no cache anywhere, not even the browser's. */
export const PERSONAL_CACHE_CONTROL = "private, no-store";

/**
 * Cache-Control on Connect GET answers (methods marked `idempotency_level = NO_SIDE_EFFECTS`),
 * the only ones an HTTP cache could keep. A method is uncacheable unless the service says
 * otherwise in `policies` (by RPC path): answers that depend on the caller's token must never be
 * served to someone else, and errors are never cached.
 */
export function cacheControlInterceptor(policies: Record<string, string>): Interceptor {
  return (next) => async (req) => {
    if (req.requestMethod !== "GET") return next(req);
    const policy = policies[`/${req.service.typeName}/${req.method.name}`] ?? PERSONAL_CACHE_CONTROL;
    try {
      const res = await next(req);
      res.header.set("cache-control", policy);
      return res;
    } catch (error) {
      if (error instanceof ConnectError) error.metadata.set("cache-control", "no-store");
      throw error;
    }
  };
}

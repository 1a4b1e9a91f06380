import type http from "node:http";
import type http2 from "node:http2";
import { cors as connectCors } from "@connectrpc/connect";
import { DEPRECATION_HEADERS } from "./deprecation.ts";

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;
type Handler = (req: Request, res: Response) => void;

/** Headers a browser may send: Connect's and gRPC-Web's own, plus the bearer token and trace context. */
export const CORS_ALLOWED_HEADERS = [...connectCors.allowedHeaders, "Authorization", "Traceparent", "Tracestate"];
/** Headers a browser script may read: Connect's and gRPC-Web's own, plus the deprecation notice. */
export const CORS_EXPOSED_HEADERS = [...connectCors.exposedHeaders, ...DEPRECATION_HEADERS];
export const CORS_ALLOWED_METHODS = connectCors.allowedMethods;
/** How long a browser may reuse a preflight answer. */
export const CORS_MAX_AGE_SECONDS = 7_200;

/**
 * Parses CORS_ALLOWED_ORIGINS: a comma-separated list of origins (`https://app.example.com`).
 * A port of `*` (`http://localhost:*`) matches any port of that scheme and host, for local
 * development where dev servers pick their own ports. Anything else is refused at startup, so a
 * typo cannot silently open (or close) the API to browsers.
 */
export function parseAllowedOrigins(value: string): string[] {
  const origins = value
    .split(",")
    .map((origin) => origin.trim())
    .filter(Boolean);
  for (const origin of origins) {
    if (!/^https?:\/\/[a-z0-9.-]+(:(\d{1,5}|\*))?$/i.test(origin)) {
      throw new Error(`CORS_ALLOWED_ORIGINS: "${origin}" is not an origin (scheme://host[:port], port may be *)`);
    }
  }
  return origins;
}

export function originAllowed(origin: string, allowed: readonly string[]): boolean {
  return allowed.some((pattern) => {
    if (!pattern.endsWith(":*")) return pattern.toLowerCase() === origin.toLowerCase();
    const prefix = pattern.slice(0, -1).toLowerCase();
    return origin.toLowerCase().startsWith(prefix) && /^\d{1,5}$/.test(origin.slice(prefix.length));
  });
}

/**
 * CORS for Connect and gRPC-Web, in front of the Connect handler: a preflight (OPTIONS with
 * Access-Control-Request-Method) from an allowed origin is answered here with Connect's method
 * and header lists; from any other origin it gets 403 and no CORS headers, so the browser blocks
 * the call. Actual calls from an allowed origin carry Allow-Origin and the exposed headers.
 * Tokens travel in the Authorization header, never in cookies, so credentials stay off.
 */
export function withCors(handler: Handler, allowedOrigins: readonly string[]): Handler {
  return (req, res) => {
    const origin = req.headers.origin;
    const isPreflight = req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
    if (isPreflight) {
      res.setHeader("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
      if (!origin || !originAllowed(origin, allowedOrigins)) {
        res.statusCode = 403;
        res.end();
        return;
      }
      res.setHeader("Access-Control-Allow-Origin", origin);
      res.setHeader("Access-Control-Allow-Methods", CORS_ALLOWED_METHODS.join(", "));
      res.setHeader("Access-Control-Allow-Headers", CORS_ALLOWED_HEADERS.join(", "));
      res.setHeader("Access-Control-Max-Age", String(CORS_MAX_AGE_SECONDS));
      res.statusCode = 204;
      res.end();
      return;
    }
    if (origin) {
      res.setHeader("Vary", "Origin");
      if (originAllowed(origin, allowedOrigins)) {
        res.setHeader("Access-Control-Allow-Origin", origin);
        res.setHeader("Access-Control-Expose-Headers", CORS_EXPOSED_HEADERS.join(", "));
      }
    }
    handler(req, res);
  };
}

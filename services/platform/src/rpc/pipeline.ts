import type { Interceptor } from "@connectrpc/connect";
import type { AccessTable } from "../auth/access.ts";
import { authorizeCall } from "../auth/authorize.ts";
import type { TokenVerifier } from "../auth/verifier.ts";
import type { Logger } from "../logger.ts";
import { cacheControlInterceptor } from "./cache-control.ts";
import { deprecationInterceptor, type Deprecation } from "./deprecation.ts";
import { requestDecodedInterceptor, requestGate, strictJson, type JsonRequestOptions, type RequestGate } from "./gate.ts";
import { errorInterceptor, serverTelemetryInterceptor } from "./interceptors.ts";
import { validationInterceptor } from "./validation.ts";

export interface ServerPipelineOptions {
  access: AccessTable;
  verify: TokenVerifier;
  /** The deprecation table in force (proto/deprecations.ts plus any extension). */
  deprecations: Map<string, Deprecation>;
  /** The deprecation window's clock; the wall clock unless a test injects one. */
  deprecationClock?: () => number;
  /** Cache-Control by RPC path for Connect GET answers (see cache-control.ts). */
  cacheControl?: Record<string, string>;
  log: Logger;
}

/**
 * Every call's path through the platform, in one place, in this order:
 *
 * 1. the request gate, on the headers, before the body is read: the token and the access table
 *    (refused calls are never parsed); a body Connect cannot decode (strict UTF-8 for JSON)
 *    becomes INVALID_ARGUMENT;
 * 2. the decoded marker (from here on, a failure is not the body's fault);
 * 3. telemetry: a SERVER span and a duration sample with the final code;
 * 4. cache control: a service's Cache-Control on its shareable Connect GET answers (every other
 *    GET answer keeps the no-store the HTTP layer set, refusals by the gate included);
 * 5. deprecation: the window of an old API version, for a known principal (the gate ran): before
 *    its sunset Deprecation, Sunset and Link headers on every answer, errors included, counted by
 *    caller; after it FAILED_PRECONDITION naming the successor;
 * 6. validation: the buf.validate rules of the request message;
 * 7. error mapping, innermost: domain errors become Connect codes once, before any interceptor
 *    above sees them.
 */
export function serverPipeline(options: ServerPipelineOptions): { requestGate: RequestGate; interceptors: Interceptor[]; jsonOptions: JsonRequestOptions } {
  return {
    requestGate: requestGate(authorizeCall(options.access, options.verify, options.log)),
    interceptors: [
      requestDecodedInterceptor(),
      serverTelemetryInterceptor(),
      cacheControlInterceptor(options.cacheControl ?? {}),
      deprecationInterceptor(options.deprecations, options.deprecationClock),
      validationInterceptor(),
      errorInterceptor(options.log),
    ],
    jsonOptions: strictJson,
  };
}

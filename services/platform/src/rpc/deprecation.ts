import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { serviceMeter } from "../metrics.ts";

/** The headers this interceptor adds; browsers may read them (cors.ts exposes them). */
export const DEPRECATION_HEADERS = ["Deprecation", "Sunset", "Link"];

/** A protobuf service kept for old clients until `sunset`, replaced by `successor`. */
export interface Deprecation {
  sunset: Date;
  successor: string;
}

const deprecatedCalls = serviceMeter.createCounter("meshwork.rpc.deprecated_calls", {
  description: "Calls to deprecated API versions, by service and method: retire a version when this stays at zero",
});

/**
 * Marks every answer of a deprecated service with `Deprecation` (RFC 9745), `Sunset` (RFC 8594)
 * and a successor link, over all three protocols (for gRPC they arrive as metadata), and counts
 * the calls so operators can see when the last client has moved.
 */
export function deprecationInterceptor(deprecations: Record<string, Deprecation>): Interceptor {
  return (next) => async (req) => {
    const deprecation = deprecations[req.service.typeName];
    if (!deprecation) return next(req);
    deprecatedCalls.add(1, { "rpc.service": req.service.typeName, "rpc.method": req.method.name });
    const headers: [string, string][] = [
      ["deprecation", "@" + Math.floor(deprecation.sunset.getTime() / 1000 - 180 * 86_400)],
      ["sunset", deprecation.sunset.toUTCString()],
      ["link", `</${deprecation.successor}>; rel="successor-version"`],
    ];
    try {
      const res = await next(req);
      for (const [name, value] of headers) res.header.set(name, value);
      return res;
    } catch (error) {
      if (error instanceof ConnectError) for (const [name, value] of headers) error.metadata.set(name, value);
      throw error;
    }
  };
}

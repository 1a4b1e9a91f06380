import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Attributes } from "@opentelemetry/api";
import { DEFAULT_DEPRECATION_WINDOW_DAYS, type DeprecatedApi } from "@meshwork/proto/deprecations.ts";
import { principalKey } from "../auth/authorize.ts";
import { serviceMeter } from "../metrics.ts";

/** The headers this interceptor adds; browsers may read them (cors.ts exposes them). */
export const DEPRECATION_HEADERS = ["Deprecation", "Sunset", "Link"];

const DAY_MS = 86_400_000;
/** How long an API may stay in the build after its sunset before `make api-check` fails. */
export const RETIREMENT_GRACE_DAYS = 14;

/** One row of the deprecation table with its dates resolved (and any incident extension applied). */
export interface Deprecation {
  api: string;
  successor: string;
  deprecatedOn: Date;
  /** The first moment the API is refused. */
  sunset: Date;
  /** True when DEPRECATION_EXTENSIONS moved the sunset later than the table says. */
  extended: boolean;
}

const deprecatedCalls = serviceMeter.createCounter("meshwork.rpc.deprecated_calls", {
  description: "Calls to deprecated APIs before their sunset, by service, method and calling principal: who still has to move",
});
const retiredCalls = serviceMeter.createCounter("meshwork.rpc.retired_calls", {
  description: "Calls to APIs past their sunset, refused with FAILED_PRECONDITION, by service, method and calling principal",
});

/** The table's row for `api`, with its sunset (default: deprecated-on + 90 days). */
export function resolveDeprecation(row: DeprecatedApi): Deprecation {
  const deprecatedOn = utcDay(row.deprecatedOn, `${row.api}: deprecatedOn`);
  const sunset = row.sunset ? utcDay(row.sunset, `${row.api}: sunset`) : new Date(deprecatedOn.getTime() + DEFAULT_DEPRECATION_WINDOW_DAYS * DAY_MS);
  if (sunset <= deprecatedOn) throw new Error(`${row.api}: sunset ${row.sunset} is not after deprecatedOn ${row.deprecatedOn}`);
  return { api: row.api, successor: row.successor, deprecatedOn, sunset, extended: false };
}

/**
 * The deprecations in force, keyed by API. `extensions` is the DEPRECATION_EXTENSIONS setting,
 * "<api>=<YYYY-MM-DD>[,...]": during an incident an operator can keep a retired API served a while
 * longer without a release. It may only move a sunset later, and only of an API in the table.
 */
export function deprecationsInForce(table: readonly DeprecatedApi[], extensions = ""): Map<string, Deprecation> {
  const deprecations = new Map(table.map((row) => [row.api, resolveDeprecation(row)]));
  for (const entry of extensions.split(",").map((part) => part.trim()).filter(Boolean)) {
    const [api, day, ...rest] = entry.split("=");
    if (!api || !day || rest.length > 0) throw new Error(`DEPRECATION_EXTENSIONS: expected <api>=<YYYY-MM-DD>, got "${entry}"`);
    const deprecation = deprecations.get(api);
    if (!deprecation) throw new Error(`DEPRECATION_EXTENSIONS: ${api} is not in the deprecation table (proto/deprecations.ts)`);
    const sunset = utcDay(day, `DEPRECATION_EXTENSIONS ${api}`);
    if (sunset <= deprecation.sunset) throw new Error(`DEPRECATION_EXTENSIONS: ${api} sunsets ${isoDay(deprecation.sunset)}; an extension must be later, got ${day}`);
    deprecations.set(api, { ...deprecation, sunset, extended: true });
  }
  return deprecations;
}

/**
 * Enforces the window on every call, over gRPC, gRPC-Web and Connect alike. Before the sunset the
 * call is served and its answer carries `Deprecation` (RFC 9745), `Sunset` (RFC 8594) and a
 * successor `Link`, and it is counted by calling principal, so operators see who still depends on
 * the old API. From the sunset on, the call is refused with FAILED_PRECONDITION naming the
 * successor. Runs after the request gate (rpc/pipeline.ts), so the principal is known and an
 * anonymous caller learns nothing about a method it may not call. `now` is injectable for tests.
 */
export function deprecationInterceptor(deprecations: Map<string, Deprecation>, now: () => number = Date.now): Interceptor {
  // The headers depend on the table alone: built once, not on every call of an old API.
  const headersByApi = new Map([...deprecations].map(([api, deprecation]) => [api, deprecationHeaders(deprecation)]));
  // A caller's attribute set is made once per method and kept frozen, so the metrics SDK hashes
  // it once (scripts/patch-dependencies.ts); bounded like the series the counters keep anyway.
  const callerAttributes = new WeakMap<DescMethod, Map<string, Attributes>>();
  const attributesOf = (service: string, method: DescMethod, caller: string): Attributes => {
    let byCaller = callerAttributes.get(method);
    if (!byCaller) callerAttributes.set(method, (byCaller = new Map()));
    let attributes = byCaller.get(caller);
    if (!attributes) {
      if (byCaller.size >= 10_000) byCaller.clear();
      attributes = Object.freeze({ "rpc.service": service, "rpc.method": method.name, "meshwork.caller": caller });
      byCaller.set(caller, attributes);
    }
    return attributes;
  };
  return (next) => async (req) => {
    const deprecation = deprecations.get(req.service.typeName);
    if (!deprecation) return next(req);
    const principal = req.contextValues.get(principalKey);
    const caller = principal ? (principal.service ? `service:${principal.service}` : `user:${principal.userId}`) : "anonymous";
    const attributes = attributesOf(req.service.typeName, req.method, caller);
    const headers = headersByApi.get(req.service.typeName)!;
    if (now() >= deprecation.sunset.getTime()) {
      retiredCalls.add(1, attributes);
      const error = new ConnectError(
        `${deprecation.api} was retired on ${isoDay(deprecation.sunset)}; use ${deprecation.successor}`,
        Code.FailedPrecondition,
      );
      for (const [name, value] of headers) error.metadata.set(name, value);
      throw error;
    }
    deprecatedCalls.add(1, attributes);
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

export function deprecationHeaders(deprecation: Deprecation): [string, string][] {
  return [
    ["deprecation", "@" + Math.floor(deprecation.deprecatedOn.getTime() / 1000)],
    ["sunset", deprecation.sunset.toUTCString()],
    ["link", `</${deprecation.successor}>; rel="successor-version"`],
  ];
}

/** An API that has outstayed its sunset by more than the grace period and must be deleted. */
export interface OverdueApi {
  api: string;
  successor: string;
  sunset: Date;
  daysPastSunset: number;
}

/**
 * `make api-check`: the deprecated APIs still in the build (`built`: the protobuf services found
 * in proto/) more than RETIREMENT_GRACE_DAYS past their table sunset. Extensions do not count here:
 * an incident may keep an API served, not keep its code forever.
 */
export function overdueApis(table: readonly DeprecatedApi[], built: ReadonlySet<string>, today: Date): OverdueApi[] {
  return table
    .map(resolveDeprecation)
    .filter((deprecation) => built.has(deprecation.api))
    .map((deprecation) => ({
      api: deprecation.api,
      successor: deprecation.successor,
      sunset: deprecation.sunset,
      daysPastSunset: Math.floor((today.getTime() - deprecation.sunset.getTime()) / DAY_MS),
    }))
    .filter((api) => api.daysPastSunset > RETIREMENT_GRACE_DAYS);
}

export function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function utcDay(value: string, what: string): Date {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) throw new Error(`${what}: expected YYYY-MM-DD, got "${value}"`);
  const date = new Date(`${value}T00:00:00Z`);
  if (Number.isNaN(date.getTime()) || isoDay(date) !== value) throw new Error(`${what}: "${value}" is not a date`);
  return date;
}

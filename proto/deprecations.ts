/**
 * The one table of deprecated APIs (docs/versioning.md). From it, every service answers calls to
 * a deprecated API with Deprecation, Sunset and Link headers until the sunset and refuses them
 * with FAILED_PRECONDITION after (services/platform/src/rpc/deprecation.ts), and `make api-check`
 * fails the build once an API is more than 14 days past its sunset and still in proto/.
 */
export interface DeprecatedApi {
  /** The protobuf service's full name. */
  api: string;
  /** What its callers move to. */
  successor: string;
  /** The day the successor shipped and the clock started (YYYY-MM-DD, UTC). */
  deprecatedOn: string;
  /** The last day it is served is the day before this (YYYY-MM-DD, UTC); default deprecatedOn + 90 days. */
  sunset?: string;
}

/** "Three months": how long a deprecated API is served unless its row says otherwise. */
export const DEFAULT_DEPRECATION_WINDOW_DAYS = 90;

export const DEPRECATED_APIS: readonly DeprecatedApi[] = [
  {
    api: "meshwork.presence.v1.PresenceService",
    successor: "meshwork.presence.v2.PresenceService",
    deprecatedOn: "2026-11-26",
  },
];

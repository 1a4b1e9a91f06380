/**
 * The presence client library: callers ask for what they need, and the library picks the newest
 * API version the server speaks. When the server answers v2 with UNIMPLEMENTED (it was rolled back
 * to a release that serves only v1), the library falls back to v1 where a fallback is defined,
 * and says so in the answer, so a caller can tell a degraded answer from a full one.
 */
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import * as v1 from "../gen/meshwork/presence/v1/presence_pb.js";
import * as v2 from "../gen/meshwork/presence/v2/presence_pb.js";

export interface PresenceSummary {
  onlineUsers: bigint;
  /** Unknown (undefined) when answered by v1, which does not count sessions. */
  onlineSessions: bigint | undefined;
  /** Which API version answered. */
  answeredBy: "v2" | "v1";
}

/** How long a client remembers that the server lacks v2 before trying it again. */
const RETRY_V2_AFTER_MS = 60_000;

export class PresenceClient {
  private readonly v1: Client<typeof v1.PresenceService>;
  private readonly v2: Client<typeof v2.PresenceService>;
  private readonly now: () => number;
  private v2MissingSince: number | undefined;

  constructor(transport: Transport, now: () => number = Date.now) {
    this.v1 = createClient(v1.PresenceService, transport);
    this.v2 = createClient(v2.PresenceService, transport);
    this.now = now;
  }

  /** v2 GetPresenceSummary; falls back to v1 GetOnlineCount (users only) on a v1-only server. */
  async summary(options: { headers?: HeadersInit } = {}): Promise<PresenceSummary> {
    if (!this.v2KnownMissing()) {
      try {
        const answer = await this.v2.getPresenceSummary({}, options);
        this.v2MissingSince = undefined;
        return { onlineUsers: answer.onlineUsers, onlineSessions: answer.onlineSessions, answeredBy: "v2" };
      } catch (error) {
        if (ConnectError.from(error).code !== Code.Unimplemented) throw error;
        this.v2MissingSince = this.now();
      }
    }
    const answer = await this.v1.getOnlineCount({}, options);
    return { onlineUsers: answer.count, onlineSessions: undefined, answeredBy: "v1" };
  }

  private v2KnownMissing(): boolean {
    return this.v2MissingSince !== undefined && this.now() - this.v2MissingSince < RETRY_V2_AFTER_MS;
  }
}

import type { Client } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { createServiceClient } from "@meshwork/platform";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";

/** Renew this long before the token expires, so a step never starts with a token about to lapse. */
const RENEW_BEFORE_MS = 60_000;

/**
 * orders' own service token, from identity's client-credentials grant (role `service`, `svc`
 * orders), kept until shortly before it expires. The saga acts on its own authority, not the
 * customer's: a refund may run long after the customer's token has expired (docs/saga.md), and
 * payments and shipping admit exactly this service (their access tables name it).
 */
export class ServiceToken {
  private readonly identity: Client<typeof IdentityService>;
  private readonly credentials: () => { clientId: string; clientSecret: string } | undefined;
  private cached: { token: string; renewAt: number } | undefined;
  private pending: Promise<string> | undefined;

  constructor(identityUrl: string, credentials: () => { clientId: string; clientSecret: string } | undefined) {
    this.identity = createServiceClient(IdentityService, identityUrl);
    this.credentials = credentials;
  }

  async get(): Promise<string> {
    if (this.cached && Date.now() < this.cached.renewAt) return this.cached.token;
    // One sign-in at a time, however many steps ask at once.
    this.pending ??= this.fetch().finally(() => (this.pending = undefined));
    return this.pending;
  }

  /** Forget the token (payments or shipping refused it), so the next step fetches a new one. */
  invalidate(): void {
    this.cached = undefined;
  }

  private async fetch(): Promise<string> {
    const credentials = this.credentials();
    if (!credentials) throw new Error("no service client secret: set SERVICE_CLIENT_SECRET_FILE (or SERVICE_CLIENT_SECRET)");
    const answer = await this.identity.issueServiceToken(credentials, { timeoutMs: 10_000 });
    const expiresAt = answer.expiresAt ? timestampMs(answer.expiresAt) : Date.now() + 5 * 60_000;
    this.cached = { token: answer.accessToken, renewAt: Math.max(Date.now(), expiresAt - RENEW_BEFORE_MS) };
    return answer.accessToken;
  }
}

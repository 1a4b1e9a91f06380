import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey } from "jose";
import { ROLES, SERVICE_ROLE, type Role } from "./access.ts";

/** Who is calling, as the access token states. */
export interface Principal {
  /** The user's id, or `service:<name>` for a service token. */
  userId: string;
  /** A user's roles; empty for a service token, which is admitted only where its service is named. */
  roles: Role[];
  sessionId: string;
  expiresAt: Date;
  /** The calling service (the `svc` claim) when this is a service token, not a user's. */
  service?: string;
}

export class InvalidTokenError extends Error {
  override name = "InvalidTokenError";
}

export interface TokenVerifierOptions {
  keys: JWTVerifyGetKey;
  issuer: string;
  audience: string;
  clockToleranceSeconds?: number;
}

export type TokenVerifier = (token: string) => Promise<Principal>;

/**
 * Verifies an access token: ES256 only (so `none` and HS256-with-the-public-key are refused
 * before any key is looked at), the issuer, audience, expiry and not-before with a small skew.
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const verified = new VerifiedTokens();
  return async (token) => {
    const known = verified.get(token);
    if (known) return known;
    try {
      const { payload } = await jwtVerify(token, options.keys, {
        algorithms: ["ES256"],
        issuer: options.issuer,
        audience: options.audience,
        clockTolerance: options.clockToleranceSeconds ?? 30,
        requiredClaims: ["sub", "exp", "sid"],
      });
      const claimed = Array.isArray(payload["roles"]) ? payload["roles"] : [];
      const service = serviceOf(claimed, payload["svc"]);
      const principal: Principal = {
        userId: String(payload.sub),
        roles: service ? [] : claimed.filter(isRole),
        sessionId: String(payload["sid"]),
        expiresAt: new Date(Number(payload.exp) * 1000),
        ...(service ? { service } : {}),
      };
      verified.set(token, principal);
      return principal;
    } catch (error) {
      // An unreachable or slow JWKS endpoint is our outage, not the caller's bad token.
      if (error instanceof errors.JOSEError && !(error instanceof errors.JWKSTimeout)) throw new InvalidTokenError(error.code);
      throw error;
    }
  };
}

/**
 * identity's JWKS over HTTP, cached; an unknown `kid` triggers a refetch, but at most once per
 * cooldown, so a flood of forged kids cannot turn into a flood of fetches.
 */
export function remoteKeys(url: string, refetchFloorMs = 5_000): JWTVerifyGetKey {
  return createRemoteJWKSet(new URL(url), {
    cooldownDuration: refetchFloorMs,
    cacheMaxAge: 10 * 60_000,
    timeoutDuration: 5_000,
  });
}

/** For identity itself, which holds the keys: no network hop, always current after a rotation. */
export function localKeys(current: () => JSONWebKeySet): JWTVerifyGetKey {
  let cachedFor: JSONWebKeySet | undefined;
  let getter: JWTVerifyGetKey | undefined;
  return (header, token) => {
    const jwks = current();
    if (jwks !== cachedFor || !getter) {
      cachedFor = jwks;
      getter = createLocalJWKSet(jwks);
    }
    return getter(header, token);
  };
}

/**
 * A service token has role `service` and names its service in `svc`, and nothing else: a token
 * that mixes a service with user roles, or has one without the other, is refused outright.
 */
function serviceOf(roles: unknown[], svc: unknown): string | undefined {
  const claimsService = roles.includes(SERVICE_ROLE);
  if (!claimsService && svc === undefined) return undefined;
  if (claimsService && roles.length === 1 && typeof svc === "string" && /^[a-z][a-z0-9-]{0,62}$/.test(svc)) return svc;
  throw new InvalidTokenError("ERR_SERVICE_TOKEN_MALFORMED");
}

function isRole(value: unknown): value is Role {
  return typeof value === "string" && (ROLES as readonly string[]).includes(value);
}

/**
 * Tokens already verified, until they expire: a client sends the same token on every call, and
 * an ECDSA verification per call is most of what authorization costs. A token is immutable, so a
 * cached answer stays right until `exp`, which is checked on every hit. Bounded, oldest first out.
 */
class VerifiedTokens {
  private readonly entries = new Map<string, Principal>();
  private readonly capacity = 10_000;

  get(token: string): Principal | undefined {
    const principal = this.entries.get(token);
    if (!principal) return undefined;
    if (principal.expiresAt.getTime() <= Date.now()) {
      this.entries.delete(token);
      return undefined;
    }
    return principal;
  }

  set(token: string, principal: Principal): void {
    if (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(token, principal);
  }
}

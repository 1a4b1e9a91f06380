import { Injectable } from "@nestjs/common";
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from "jose";

export interface Principal {
  userId: string;
  roles: string[];
  expiresAt: number;
}

/**
 * The same verification Meshwork's platform does (ES256 only, issuer, audience, required
 * claims, 30 s skew) with the same kind of cache: token -> principal until `exp`, bounded.
 */
@Injectable()
export class TokenVerifier {
  private readonly keys: JWTVerifyGetKey;
  private readonly verified = new Map<string, Principal>();
  private readonly capacity = 10_000;

  constructor() {
    this.keys = createRemoteJWKSet(new URL(required("IDENTITY_JWKS_URL")), { cooldownDuration: 5_000, cacheMaxAge: 10 * 60_000 });
  }

  async verify(token: string): Promise<Principal> {
    const known = this.verified.get(token);
    if (known && known.expiresAt > Date.now()) return known;
    const { payload } = await jwtVerify(token, this.keys, {
      algorithms: ["ES256"],
      issuer: required("TOKEN_ISSUER"),
      audience: required("TOKEN_AUDIENCE"),
      clockTolerance: 30,
      requiredClaims: ["sub", "exp", "sid"],
    });
    const principal = {
      userId: String(payload.sub),
      roles: Array.isArray(payload["roles"]) ? payload["roles"].map(String) : [],
      expiresAt: Number(payload.exp) * 1000,
    };
    if (this.verified.size >= this.capacity) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, principal);
    return principal;
  }
}

export function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

import { SignJWT, type JWTPayload } from "jose";
import type { IdentityConfig } from "./config.ts";
import type { SigningKeys } from "./signing-keys.ts";

/**
 * Signs an access token with the current key: users' tokens (SignIn) and services' tokens
 * (the client-credentials grant) differ only in their claims, so they share this one signer.
 */
export async function signAccessToken(
  keys: SigningKeys,
  config: Pick<IdentityConfig, "TOKEN_ISSUER" | "TOKEN_AUDIENCE">,
  token: { subject: string; tokenId: string; expiresAt: Date; claims: JWTPayload },
): Promise<string> {
  const key = keys.current;
  return new SignJWT({ ...token.claims, sid: token.tokenId })
    .setProtectedHeader({ alg: "ES256", kid: key.kid, typ: "JWT" })
    .setIssuer(config.TOKEN_ISSUER)
    .setAudience(config.TOKEN_AUDIENCE)
    .setSubject(token.subject)
    .setIssuedAt()
    .setNotBefore("0s")
    .setExpirationTime(Math.floor(token.expiresAt.getTime() / 1000))
    .setJti(token.tokenId)
    .sign(await keys.privateKey());
}

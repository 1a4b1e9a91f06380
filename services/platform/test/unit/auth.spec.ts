import assert from "node:assert/strict";
import { Code, ConnectError, createContextValues, type HandlerContext } from "@connectrpc/connect";
import { exportJWK, generateKeyPair, SignJWT, createLocalJWKSet } from "jose";
import { PresenceService } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import { defineAccess, PUBLIC, rulesFor } from "../../src/auth/access.ts";
import { authorizeCall, principalKey } from "../../src/auth/authorize.ts";
import { createTokenVerifier, InvalidTokenError } from "../../src/auth/verifier.ts";
import { createLogger } from "../../src/logger.ts";
import { clientAddressOf } from "../../src/rpc/client-address.ts";

const { publicKey, privateKey } = await generateKeyPair("ES256");
const keys = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" }] });
const verify = createTokenVerifier({ keys, issuer: "meshwork-identity", audience: "meshwork" });
const token = (roles: string[], claims: { iss?: string; exp?: number } = {}) =>
  new SignJWT({ roles, sid: "s1" })
    .setProtectedHeader({ alg: "ES256", kid: "k1" })
    .setIssuer(claims.iss ?? "meshwork-identity")
    .setAudience("meshwork")
    .setSubject("u1")
    .setExpirationTime(claims.exp ?? Math.floor(Date.now() / 1000) + 60)
    .sign(privateKey);

describe("the token verifier", () => {
  it("returns the principal of a valid token, keeping only known roles", async () => {
    const principal = await verify(await token(["publisher", "superuser"]));
    assert.deepEqual({ ...principal, expiresAt: undefined }, { userId: "u1", roles: ["publisher"], sessionId: "s1", expiresAt: undefined });
  });

  it("refuses a wrong issuer and an expired token", async () => {
    await assert.rejects(verify(await token(["admin"], { iss: "other" })), InvalidTokenError);
    await assert.rejects(verify(await token(["admin"], { exp: Math.floor(Date.now() / 1000) - 120 })), InvalidTokenError);
  });
});

describe("call authorization (the request gate)", () => {
  const access = defineAccess(rulesFor(PresenceService, { GetOnlineCount: PUBLIC, ListOnlineUsers: ["admin"] }));
  const authorize = authorizeCall(access, verify, createLogger({ service: "test", level: "silent", format: "json" }));
  const call = async (method: "GetOnlineCount" | "ListOnlineUsers" | "Unlisted", authorization?: string) => {
    const contextValues = createContextValues();
    const header = new Headers(authorization ? { authorization } : {});
    const descriptor = PresenceService.methods.find((m) => m.name === method) ?? { ...PresenceService.methods[0]!, name: method };
    const context = { service: PresenceService, method: descriptor, requestHeader: header, values: contextValues } as unknown as HandlerContext;
    await authorize(context);
    return contextValues.get(principalKey);
  };

  it("lets anyone call a public method", async () => {
    assert.equal(await call("GetOnlineCount"), undefined);
  });

  it("answers Unauthenticated without a token and PermissionDenied without the role", async () => {
    await assert.rejects(call("ListOnlineUsers"), (e: ConnectError) => e.code === Code.Unauthenticated);
    await assert.rejects(call("ListOnlineUsers", `Bearer ${await token(["member"])}`), (e: ConnectError) => e.code === Code.PermissionDenied);
    assert.equal((await call("ListOnlineUsers", `Bearer ${await token(["admin"])}`))?.userId, "u1");
  });

  it("denies a method missing from the table", async () => {
    await assert.rejects(call("Unlisted", `Bearer ${await token(["admin"])}`), (e: ConnectError) => e.code === Code.PermissionDenied);
  });
});

describe("the client address", () => {
  it("is the socket's address when no proxy is trusted, whatever X-Forwarded-For claims", () => {
    assert.equal(clientAddressOf("203.0.113.9", "10.0.0.5", 0), "10.0.0.5");
  });

  it("is the entry the trusted proxy appended, not what the client forged before it", () => {
    assert.equal(clientAddressOf("203.0.113.9", "127.0.0.6", 1), "203.0.113.9");
    assert.equal(clientAddressOf("198.51.100.1, 203.0.113.9", "127.0.0.6", 1), "203.0.113.9");
    assert.equal(clientAddressOf("198.51.100.1, 203.0.113.9, 10.1.1.1", "127.0.0.6", 2), "203.0.113.9");
  });

  it("is the socket's address for a call that did not come through the proxies (inside the mesh)", () => {
    assert.equal(clientAddressOf(undefined, "127.0.0.6", 1), "127.0.0.6");
    assert.equal(clientAddressOf("203.0.113.9", "127.0.0.6", 2), "127.0.0.6");
  });
});

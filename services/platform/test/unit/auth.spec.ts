import assert from "node:assert/strict";
import { Code, ConnectError, createContextValues, type HandlerContext } from "@connectrpc/connect";
import { exportJWK, generateKeyPair, SignJWT, createLocalJWKSet } from "jose";
import { PresenceService } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import { byService, defineAccess, PUBLIC, rulesFor, SIGNED_IN } from "../../src/auth/access.ts";
import { authorizeCall, principalKey } from "../../src/auth/authorize.ts";
import { createTokenVerifier, InvalidTokenError } from "../../src/auth/verifier.ts";
import { createLogger } from "../../src/logger.ts";
import { clientAddressOf } from "../../src/rpc/client-address.ts";

const { publicKey, privateKey } = await generateKeyPair("ES256");
const keys = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" }] });
const verify = createTokenVerifier({ keys, issuer: "meshwork-identity", audience: "meshwork" });
const token = (roles: string[], claims: { iss?: string; exp?: number; svc?: string } = {}) =>
  new SignJWT({ roles, sid: "s1", ...(claims.svc === undefined ? {} : { svc: claims.svc }) })
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

  it("reads a service token as its service, with no user role", async () => {
    const principal = await verify(await token(["service"], { svc: "orders" }));
    assert.equal(principal.service, "orders");
    assert.deepEqual(principal.roles, []);
  });

  it("refuses a service token that also claims user roles, or a service role without its svc claim", async () => {
    await assert.rejects(verify(await token(["service", "admin"], { svc: "orders" })), InvalidTokenError);
    await assert.rejects(verify(await token(["service"])), InvalidTokenError);
    await assert.rejects(verify(await token(["admin"], { svc: "orders" })), InvalidTokenError);
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

describe("service identities in the access table", () => {
  const access = defineAccess(
    rulesFor(PresenceService, { GetOnlineCount: SIGNED_IN, ListOnlineUsers: [byService("orders")] }),
    { orders: ["/grpc.health.v1.Health/Check"] },
  );
  const authorize = authorizeCall(access, verify, createLogger({ service: "test", level: "silent", format: "json" }));
  const call = async (method: "GetOnlineCount" | "ListOnlineUsers", bearer: string) => {
    const values = createContextValues();
    const context = {
      service: PresenceService,
      method: PresenceService.methods.find((m) => m.name === method)!,
      requestHeader: new Headers({ authorization: `Bearer ${bearer}` }),
      values,
    } as unknown as HandlerContext;
    await authorize(context);
    return values.get(principalKey);
  };
  const denied = (e: ConnectError) => e.code === Code.PermissionDenied;

  it("refuses a leaked service token on a user-only method", async () => {
    await assert.rejects(call("GetOnlineCount", await token(["service"], { svc: "orders" })), denied);
  });

  it("refuses a member token, and an admin's, on a service-only method", async () => {
    await assert.rejects(call("ListOnlineUsers", await token(["member"])), denied);
    await assert.rejects(call("ListOnlineUsers", await token(["admin"])), denied);
  });

  it("admits the named service on its method and refuses any other service", async () => {
    assert.equal((await call("ListOnlineUsers", await token(["service"], { svc: "orders" })))?.service, "orders");
    await assert.rejects(call("ListOnlineUsers", await token(["service"], { svc: "audit" })), denied);
  });

  it("derives the mesh's callers from the service grants, plus the public paths a service calls without a token", () => {
    assert.deepEqual(access.callers, { orders: ["/grpc.health.v1.Health/Check", "/meshwork.presence.v1.PresenceService/ListOnlineUsers"] });
  });

  it("refuses to list a caller of a non-public path without granting it", () => {
    assert.throws(() => defineAccess(rulesFor(PresenceService, { GetOnlineCount: SIGNED_IN, ListOnlineUsers: ["admin"] }), { orders: ["/meshwork.presence.v1.PresenceService/ListOnlineUsers"] }), /not public/);
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

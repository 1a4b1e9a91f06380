import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import { decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from "jose";
import { AuditService } from "@meshwork/proto/meshwork/audit/v1/audit_pb.js";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { OrdersService } from "@meshwork/proto/meshwork/orders/v1/orders_pb.js";
import { PaymentsService } from "@meshwork/proto/meshwork/payments/v1/payments_pb.js";
import { ShippingService } from "@meshwork/proto/meshwork/shipping/v1/shipping_pb.js";
import { PresenceAdminService, PresenceService } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import { ROOT, waitFor } from "../../scripts/lib/system.ts";
import { adminToken, PROTOCOLS, TestSystem } from "../support/harness.ts";

const run = promisify(execFile);
const base64url = (value: string | Buffer) => Buffer.from(value).toString("base64url");

describe("token-based security", function () {
  this.timeout(120_000);
  const system = new TestSystem({ env: { identity: { ACCESS_TOKEN_TTL_SECONDS: "600" } } });
  let admin = "";
  const tokens: Record<"member" | "publisher", string> = { member: "", publisher: "" };
  let publisherId = "";

  before(async () => {
    await system.start();
    admin = await adminToken(system);
    tokens.member = await system.signIn("member@example.com", "member-passphrase-1", "Member One");
    const identity = system.client(IdentityService, "identity", "connect", admin);
    const { user } = await system.client(IdentityService, "identity").signUp({ email: "publisher@example.com", password: "publisher-passphrase-1", displayName: "Pat Publisher" });
    publisherId = user!.id;
    await identity.setUserRoles({ userId: publisherId, roles: ["publisher"] });
    tokens.publisher = await system.signIn("publisher@example.com", "publisher-passphrase-1");
    await waitFor(async () => Number((await system.client(PresenceService, "presence", "connect", admin).getOnlineCount({})).count) >= 3, "three users online");
  });
  after(() => system.stop());

  const signingKey = async () => {
    const file = JSON.parse(fs.readFileSync(path.join(system.dataDir, "identity", "signing-keys.json"), "utf8")) as { keys: (JWK & { kid: string })[] };
    const jwk = file.keys.at(-1)!;
    return { kid: jwk.kid, key: await importJWK(jwk, "ES256"), publicJwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } };
  };
  const claims = { roles: ["admin"], sid: "forged-session" };
  const forge = async (options: { issuer?: string; audience?: string; expiresIn?: number; notBefore?: number; kid?: string; key?: CryptoKey | Uint8Array }) => {
    const real = await signingKey();
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: "ES256", kid: options.kid ?? real.kid })
      .setIssuer(options.issuer ?? "meshwork-identity")
      .setAudience(options.audience ?? "meshwork")
      .setSubject("forger")
      .setIssuedAt(now - 3600)
      .setNotBefore(options.notBefore ?? now - 60)
      .setExpirationTime(now + (options.expiresIn ?? 300))
      .sign(options.key ?? real.key);
  };

  it("accepts a well-formed token from the test's own forge, proving the forge is faithful", async () => {
    const token = await forge({});
    const count = await system.client(PresenceService, "presence", "connect", token).getOnlineCount({});
    assert.ok(count.count >= 3n);
  });

  it("answers Unauthenticated to every kind of bad token, over gRPC, gRPC-Web and Connect", async () => {
    const valid = tokens.member;
    const [header, payload, signature] = valid.split(".") as [string, string, string];
    const tamperedPayload = base64url(JSON.stringify({ ...JSON.parse(Buffer.from(payload, "base64url").toString()), roles: ["admin"] }));
    const real = await signingKey();
    const other = await generateKeyPair("ES256");
    const hs256Header = base64url(JSON.stringify({ alg: "HS256", kid: real.kid, typ: "JWT" }));
    const hs256Body = base64url(JSON.stringify({ ...claims, iss: "meshwork-identity", aud: "meshwork", sub: "x", exp: Math.floor(Date.now() / 1000) + 300 }));
    const hs256Signature = createHmac("sha256", JSON.stringify(real.publicJwk)).update(`${hs256Header}.${hs256Body}`).digest("base64url");
    const cases: Record<string, string | undefined> = {
      "no token": undefined,
      "a malformed token": "not.a.jwt",
      "an expired token": await forge({ expiresIn: -120 }),
      "nbf in the future": await forge({ notBefore: Math.floor(Date.now() / 1000) + 600 }),
      "a wrong iss": await forge({ issuer: "someone-else" }),
      "a wrong aud": await forge({ audience: "another-system" }),
      "alg none": `${base64url(JSON.stringify({ alg: "none", typ: "JWT" }))}.${payload}.`,
      "HS256 with the public key as secret": `${hs256Header}.${hs256Body}.${hs256Signature}`,
      "a tampered payload": `${header}.${tamperedPayload}.${signature}`,
      "an unknown kid": await forge({ kid: "no-such-key" }),
      "another key claiming a known kid": await forge({ key: other.privateKey }),
    };
    for (const protocol of PROTOCOLS) {
      for (const [name, token] of Object.entries(cases)) {
        const presence = system.client(PresenceService, "presence", protocol, token);
        await assert.rejects(presence.getOnlineCount({}), (error: ConnectError) => {
          assert.equal(error.code, Code.Unauthenticated, `${name} over ${protocol}: ${error.message}`);
          return true;
        });
      }
    }
  });

  it("answers PermissionDenied to a member calling an admin method, over every protocol", async () => {
    for (const protocol of PROTOCOLS) {
      const denied = (error: ConnectError) => error.code === Code.PermissionDenied;
      await assert.rejects(system.client(IdentityService, "identity", protocol, tokens.member).setUserRoles({ userId: publisherId, roles: ["admin"] }), denied);
      await assert.rejects(system.client(PresenceAdminService, "presence", protocol, tokens.member).rebuildProjection({}), denied);
      await assert.rejects(system.client(PresenceService, "presence", protocol, tokens.member).listOnlineUsers({}), denied);
      await assert.rejects(system.client(AuditService, "audit", protocol, tokens.member).listEvents({}), denied);
    }
  });

  it("shapes ListOnlineUsers by role: emails for an admin, display names only for a publisher", async () => {
    for (const protocol of PROTOCOLS) {
      const asAdmin = await system.client(PresenceService, "presence", protocol, admin).listOnlineUsers({});
      const member = asAdmin.users.find((user) => user.displayName === "Member One")!;
      assert.equal(member.email, "member@example.com");
      assert.ok(member.userId);
      const asPublisher = await system.client(PresenceService, "presence", protocol, tokens.publisher).listOnlineUsers({});
      assert.deepEqual(
        asPublisher.users.map((user) => user.displayName),
        asAdmin.users.map((user) => user.displayName),
      );
      for (const user of asPublisher.users) {
        assert.equal(user.email, "");
        assert.equal(user.userId, "");
      }
    }
  });

  it("shapes ListEvents by role: full payloads for an admin, personal data redacted for a publisher", async () => {
    await waitFor(async () => (await system.client(AuditService, "audit", "connect", admin).listEvents({ userId: publisherId })).events.length >= 3, "audit to hold the publisher's events");
    for (const protocol of PROTOCOLS) {
      const full = await system.client(AuditService, "audit", protocol, admin).listEvents({ userId: publisherId });
      const redacted = await system.client(AuditService, "audit", protocol, tokens.publisher).listEvents({ userId: publisherId });
      assert.deepEqual(redacted.events.map((event) => event.id), full.events.map((event) => event.id));
      for (const event of full.events) {
        assert.equal(event.redacted, false);
        assert.ok(event.payload.length > 0);
        assert.match(event.payloadJson, /publisher@example\.com/);
      }
      for (const event of redacted.events) {
        assert.equal(event.redacted, true);
        assert.equal(event.payload.length, 0);
        assert.doesNotMatch(event.payloadJson, /publisher@example\.com|Pat Publisher/);
        assert.match(event.payloadJson, /\[redacted\]/);
      }
      const single = await system.client(AuditService, "audit", protocol, tokens.publisher).getEvent({ id: full.events[0]!.id });
      assert.equal(single.event!.redacted, true);
    }
  });

  it("emits RolesChanged when an admin sets roles", async () => {
    const events = await system.client(AuditService, "audit", "connect", admin).listEvents({ userId: publisherId, subjectPrefix: "identity.v1.user.roles_changed" });
    assert.equal(events.events.length, 1);
    const payload = JSON.parse(events.events[0]!.payloadJson) as { rolesChanged: { roles: string[] } };
    assert.deepEqual(payload.rolesChanged.roles, ["publisher"]);
  });

  it("keeps old tokens valid after a key rotation while new tokens use the new key", async () => {
    const before = tokens.member;
    const oldKid = decodeProtectedHeader(before).kid;
    const { stdout } = await run(process.execPath, ["scripts/meshwork.ts", "keys", "rotate", "--file", path.join(system.dataDir, "identity", "signing-keys.json"), "--token-ttl", "600"], { cwd: ROOT });
    assert.match(stdout, /added signing key/);
    await waitFor(async () => ((await (await fetch(`${system.adminUrl("identity")}/.well-known/jwks.json`)).json()) as { keys: unknown[] }).keys.length === 2, "the JWKS to list both keys", 5_000, 100);
    const after = (await system.client(IdentityService, "identity").signIn({ email: "member@example.com", password: "member-passphrase-1" })).accessToken;
    const newKid = decodeProtectedHeader(after).kid;
    assert.notEqual(newKid, oldKid);
    for (const protocol of PROTOCOLS) {
      for (const token of [before, after]) {
        const count = await system.client(PresenceService, "presence", protocol, token).getOnlineCount({});
        assert.ok(count.count > 0n);
      }
    }
  });

  const ordersServiceToken = async () => {
    const clientSecret = system.serviceClientEnv.orders!["SERVICE_CLIENT_SECRET"]!;
    return (await system.client(IdentityService, "identity").issueServiceToken({ clientId: "orders", clientSecret })).accessToken;
  };
  const denied = (error: ConnectError) => error.code === Code.PermissionDenied;

  it("issues orders a service token with role service and svc orders, and refuses a wrong secret or an unknown client", async () => {
    const [, payload] = (await ordersServiceToken()).split(".") as [string, string];
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as { roles: string[]; svc: string; sub: string };
    assert.deepEqual({ roles: claims.roles, svc: claims.svc, sub: claims.sub }, { roles: ["service"], svc: "orders", sub: "service:orders" });
    const identity = system.client(IdentityService, "identity");
    const unauthenticated = (error: ConnectError) => error.code === Code.Unauthenticated;
    await assert.rejects(identity.issueServiceToken({ clientId: "orders", clientSecret: "not-the-secret-of-orders-at-all" }), unauthenticated);
    await assert.rejects(identity.issueServiceToken({ clientId: "presence", clientSecret: system.serviceClientEnv.orders!["SERVICE_CLIENT_SECRET"]! }), unauthenticated);
  });

  it("refuses a leaked service token on user-only methods, over every protocol", async () => {
    const leaked = await ordersServiceToken();
    for (const protocol of PROTOCOLS) {
      await assert.rejects(system.client(PresenceService, "presence", protocol, leaked).getOnlineCount({}), denied);
      await assert.rejects(system.client(OrdersService, "orders", protocol, leaked).placeOrder({}), denied);
      await assert.rejects(system.client(IdentityService, "identity", protocol, leaked).signOut({}), denied);
      await assert.rejects(system.client(IdentityService, "identity", protocol, leaked).setUserRoles({ userId: publisherId, roles: ["admin"] }), denied);
    }
  });

  it("refuses a member token, and even an admin's, on the methods only orders' service may call", async () => {
    for (const token of [tokens.member, admin]) {
      await assert.rejects(system.client(PaymentsService, "payments", "grpc", token).charge({ idempotencyKey: "k", orderId: "o", userId: "u", amountCents: 1n, currency: "EUR" }), denied);
      await assert.rejects(system.client(PaymentsService, "payments", "connect", token).refund({}), denied);
      await assert.rejects(system.client(ShippingService, "shipping", "connect", token).createShipment({}), denied);
    }
  });

  it("throttles an account after ten wrong passwords and refuses even the right one with a retry hint", async () => {
    const identity = system.client(IdentityService, "identity");
    await identity.signUp({ email: "victim@example.com", password: "victim-passphrase-1", displayName: "Victim" });
    for (let attempt = 0; attempt < 10; attempt++) {
      await assert.rejects(identity.signIn({ email: "victim@example.com", password: `wrong-guess-${attempt}` }), (error: ConnectError) => error.code === Code.Unauthenticated);
    }
    await assert.rejects(identity.signIn({ email: "victim@example.com", password: "victim-passphrase-1" }), (error: ConnectError) => {
      assert.equal(error.code, Code.ResourceExhausted);
      assert.ok(Number(error.metadata.get("retry-after")) > 0, "a retry-after hint");
      assert.match(error.rawMessage, /retry in \d+ s/);
      return true;
    });
    const other = await identity.signIn({ email: "member@example.com", password: "member-passphrase-1" });
    assert.ok(other.accessToken, "other accounts are unaffected");
  });

  it("clears an account's failures when it signs in, so only failures since the last success count", async () => {
    const identity = system.client(IdentityService, "identity");
    await identity.signUp({ email: "forgetful@example.com", password: "forgetful-passphrase-1", displayName: "Forgetful" });
    const wrongGuesses = async (count: number) => {
      for (let attempt = 0; attempt < count; attempt++) {
        await assert.rejects(identity.signIn({ email: "forgetful@example.com", password: `wrong-${attempt}` }), (error: ConnectError) => error.code === Code.Unauthenticated);
      }
    };
    // Two successes with no failure before them: there is nothing to clear (identity skips the write).
    for (let success = 0; success < 2; success++) assert.ok((await identity.signIn({ email: "forgetful@example.com", password: "forgetful-passphrase-1" })).accessToken);
    await wrongGuesses(9);
    assert.ok((await identity.signIn({ email: "forgetful@example.com", password: "forgetful-passphrase-1" })).accessToken);
    // Nine more: eighteen in the window, but one success in between cleared the first nine.
    await wrongGuesses(9);
    assert.ok((await identity.signIn({ email: "forgetful@example.com", password: "forgetful-passphrase-1" })).accessToken, "not throttled");
  });
});

describe("sign-in timing", function () {
  this.timeout(120_000);
  // identity with its production argon2id parameters: the decoy hash must cost what a real one does.
  const system = new TestSystem({ services: ["identity"], env: { identity: { ARGON2_MEMORY_KIB: "19456", ARGON2_ITERATIONS: "2" } } });
  before(() => system.start());
  after(() => system.stop());

  it("answers an unknown email and a wrong password the same way in about the same time", async () => {
    const identity = system.client(IdentityService, "identity");
    for (let index = 0; index < 10; index++) await identity.signUp({ email: `timing-${index}@example.com`, password: "timing-passphrase-ok", displayName: "T" });
    const measure = async (email: string) => {
      const started = performance.now();
      const error = await identity.signIn({ email, password: "not-the-passphrase" }).then(() => undefined, (caught: ConnectError) => caught);
      return { ms: performance.now() - started, code: error?.code, message: error?.rawMessage };
    };
    const known: number[] = [];
    const unknown: number[] = [];
    for (let index = 0; index < 10; index++) {
      const a = await measure(`timing-${index}@example.com`);
      const b = await measure(`ghost-${index}@example.com`);
      assert.deepEqual([a.code, a.message], [Code.Unauthenticated, "invalid email or password"]);
      assert.deepEqual([b.code, b.message], [a.code, a.message]);
      known.push(a.ms);
      unknown.push(b.ms);
    }
    const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)]!;
    const ratio = median(unknown) / median(known);
    // Without the decoy hash an unknown email answers in well under a millisecond against tens of
    // milliseconds (a ratio near 0.01); the band is wide because CI machines are noisy.
    assert.ok(ratio > 0.5 && ratio < 2, `unknown/known median time ratio ${ratio.toFixed(2)} (${median(unknown).toFixed(1)} ms vs ${median(known).toFixed(1)} ms)`);
  });
});

describe("throttling by source address", function () {
  this.timeout(60_000);
  // As behind the Istio gateway: one trusted proxy appends the client's address to X-Forwarded-For.
  const system = new TestSystem({ services: ["identity"], env: { identity: { THROTTLE_ADDRESS_FAILURES: "5", TRUSTED_PROXY_HOPS: "1" } } });
  before(() => system.start());
  after(() => system.stop());

  it("throttles an address that fails against many accounts, even for an account it never tried", async () => {
    const identity = system.client(IdentityService, "identity");
    await identity.signUp({ email: "fresh@example.com", password: "fresh-account-passphrase", displayName: "Fresh" });
    for (let attempt = 0; attempt < 5; attempt++) {
      await assert.rejects(identity.signIn({ email: `sprayed-${attempt}@example.com`, password: "password-spray-guess" }), (error: ConnectError) => error.code === Code.Unauthenticated);
    }
    await assert.rejects(identity.signIn({ email: "fresh@example.com", password: "fresh-account-passphrase" }), (error: ConnectError) => {
      assert.equal(error.code, Code.ResourceExhausted);
      assert.ok(Number(error.metadata.get("retry-after")) > 0);
      return true;
    });
  });

  it("counts the address the trusted proxy saw: one client behind the gateway cannot lock out another, nor escape by forging the header", async () => {
    const identity = system.client(IdentityService, "identity");
    await identity.signUp({ email: "behind-gateway@example.com", password: "behind-gateway-passphrase", displayName: "Behind" });
    // The attacker forges a leftmost entry; the gateway appends the address it really saw.
    const attacker = (forged: string) => ({ headers: { "x-forwarded-for": `${forged}, 203.0.113.66` } });
    for (let attempt = 0; attempt < 5; attempt++) {
      await assert.rejects(
        identity.signIn({ email: `gateway-spray-${attempt}@example.com`, password: "password-spray-guess" }, attacker(`198.51.100.${attempt}`)),
        (error: ConnectError) => error.code === Code.Unauthenticated,
      );
    }
    await assert.rejects(identity.signIn({ email: "behind-gateway@example.com", password: "behind-gateway-passphrase" }, attacker("198.51.100.200")), (error: ConnectError) => error.code === Code.ResourceExhausted);
    const otherClient = { headers: { "x-forwarded-for": "203.0.113.7" } };
    const answer = await identity.signIn({ email: "behind-gateway@example.com", password: "behind-gateway-passphrase" }, otherClient);
    assert.ok(answer.accessToken, "another client, through the same proxy, is not throttled");
  });
});

import assert from "node:assert/strict";
import path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import SQLite from "better-sqlite3";
import { decodeJwt } from "jose";
import { AuditService } from "@meshwork/proto/meshwork/audit/v1/audit_pb.js";
import { AccountClosureState, IdentityService, type AccountClosure } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { NotificationsService } from "@meshwork/proto/meshwork/notifications/v1/notifications_pb.js";
import { OrdersService, OrderState } from "@meshwork/proto/meshwork/orders/v1/orders_pb.js";
import { PresenceService } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import { waitFor } from "../../scripts/lib/system.ts";
import { adminToken, TestSystem } from "../support/harness.ts";

/**
 * Closing an account is a choreography (docs/decisions/composition.md): identity publishes
 * AccountClosureRequested and nothing orchestrates after that. Each participant does its part on
 * its own and reports with its own event; identity closes the account when all have reported.
 */
describe("closing an account (choreography)", function () {
  this.timeout(120_000);

  const userIdOf = (token: string) => decodeJwt(token).sub!;
  const order = { items: [{ sku: "mug", quantity: 1, unitPriceCents: 1_250n }], currency: "EUR" };
  const address = (countryCode: string) => ({ recipient: "Ada Lovelace", line1: "1 Main St", city: "Berlin", postalCode: "10115", countryCode });

  describe("with every participant running", () => {
    const system = new TestSystem({
      env: { orders: { SAGA_POLL_MS: "100", SAGA_LEASE_MS: "1000", SAGA_RETRY_BASE_MS: "100", SAGA_RETRY_MAX_MS: "300" } },
    });
    let admin = "";
    before(async () => {
      await system.start();
      admin = await adminToken(system);
    });
    after(() => system.stop());

    const identity = (token: string) => system.client(IdentityService, "identity", "connect", token);
    const closureOf = async (userId: string, token = admin): Promise<AccountClosure> => (await identity(token).getAccountClosure({ userId })).closure!;

    it("ends sessions, withdraws and refunds orders, erases audit's copy, says farewell, then closes the account", async () => {
      const email = "leaving@example.com";
      const password = "a-passphrase-to-leave-with";
      const token = await system.signIn(email, password, "Leaving Person");
      const userId = userIdOf(token);
      const presence = system.client(PresenceService, "presence", "connect", admin);
      await waitFor(async () => (await presence.listOnlineUsers({})).users.some((user) => user.userId === userId), "the user to be online", 10_000);

      // A charged order held open: with shipping down, its saga waits in PAYMENT_CHARGED.
      await system.stopService("shipping");
      const orders = system.client(OrdersService, "orders", "connect", token);
      const held = (await orders.placeOrder({ ...order, shippingAddress: address("DE") })).order!;
      await waitFor(async () => (await orders.getOrder({ id: held.id })).order?.state === OrderState.PAYMENT_CHARGED, "the order to be charged", 15_000, 50);

      const requested = (await identity(token).closeAccount({ userId })).closure!;
      assert.ok([AccountClosureState.PENDING, AccountClosureState.CLOSED].includes(requested.state));
      // Asking twice answers the closure under way.
      assert.equal((await identity(token).closeAccount({ userId })).closure!.requestedAt!.seconds, requested.requestedAt!.seconds);

      // Sign-in is refused at once, as a wrong password would be.
      await assert.rejects(identity("").signIn({ email, password }), (error: unknown) => ConnectError.from(error).code === Code.Unauthenticated);
      // No order may be placed for the account any more.
      await assert.rejects(orders.placeOrder({ ...order, shippingAddress: address("DE") }), (error: unknown) => ConnectError.from(error).code === Code.FailedPrecondition);

      // presence and audit report; orders cannot yet: its charged order is being refunded.
      await waitFor(async () => (await closureOf(userId)).reported.includes("presence") && (await closureOf(userId)).reported.includes("audit"), "presence and audit to report", 20_000);
      assert.equal((await presence.listOnlineUsers({})).users.some((user) => user.userId === userId), false, "the user's sessions ended");
      await system.startService("shipping");
      const adminOrders = system.client(OrdersService, "orders", "connect", admin);
      await waitFor(async () => (await adminOrders.getOrder({ id: held.id })).order?.state === OrderState.CANCELLED, "the withdrawn order to be cancelled", 20_000, 100);
      assert.equal((await adminOrders.getOrder({ id: held.id })).order?.cancellationReason, "account closed");
      const payment = sqlite(system, "payments", "SELECT state FROM payments WHERE order_id = ?", held.id);
      assert.deepEqual(payment.map((row) => row["state"]), ["REFUNDED"], "the charge was refunded");
      assert.deepEqual(sqlite(system, "shipping", "SELECT id FROM shipments WHERE order_id = ?", held.id), [], "nothing was shipped");

      await waitFor(async () => (await closureOf(userId)).state === AccountClosureState.CLOSED, "the account to be closed", 20_000);
      const closed = await closureOf(userId);
      assert.deepEqual([...closed.reported].sort(), ["audit", "notifications", "orders", "presence"]);
      assert.deepEqual(closed.awaiting, []);

      // identity erased what identified the person; the email is free again.
      const users = sqlite(system, "identity", "SELECT email, display_name, password_hash FROM users WHERE id = ?", userId);
      assert.deepEqual(users, [{ email: `closed-${userId}@erased.invalid`, display_name: "", password_hash: "" }]);
      // audit keeps that things happened, with the personal data replaced by tombstones.
      const kept = (await system.client(AuditService, "audit", "connect", admin).listEvents({ userId, pageSize: 100 })).events;
      assert.ok(kept.length >= 3, `audit kept the account's events (${kept.length})`);
      for (const event of kept) {
        assert.doesNotMatch(event.payloadJson, /leaving@example\.com|Leaving Person/, `${event.subject} still holds personal data`);
      }
      assert.ok(kept.some((event) => event.payloadJson.includes("[erased]")), "tombstones mark what was erased");
      // notifications said goodbye, once.
      const farewells = (await system.client(NotificationsService, "notifications", "connect", admin).listNotifications({ userId })).notifications;
      assert.deepEqual(farewells.map((notification) => [notification.kind, notification.recipient]), [["farewell", email]]);
    });

    it("refuses to close someone else's account unless the caller is an admin", async () => {
      const mallory = await system.signIn("mallory@example.com", "mallory-tries-her-luck");
      const victimToken = await system.signIn("victim@example.com", "victim-keeps-the-account");
      const victim = userIdOf(victimToken);
      await assert.rejects(identity(mallory).closeAccount({ userId: victim }), (error: unknown) => ConnectError.from(error).code === Code.PermissionDenied);
      await assert.rejects(identity(mallory).getAccountClosure({ userId: victim }), (error: unknown) => ConnectError.from(error).code === Code.PermissionDenied);
      const byAdmin = (await identity(admin).closeAccount({ userId: victim })).closure!;
      assert.equal(byAdmin.userId, victim);
      await waitFor(async () => (await closureOf(victim)).state === AccountClosureState.CLOSED, "the admin's closure to complete", 20_000);
    });
  });

  describe("with a participant down", () => {
    const system = new TestSystem({
      services: ["identity", "presence", "orders", "payments", "shipping"],
      env: { identity: { ACCOUNT_CLOSURE_TIMEOUT_SECONDS: "2" } },
    });
    before(() => system.start());
    after(() => system.stop());

    it("marks the closure stuck and raises the alert metric, then closes it once the participant reports", async () => {
      const token = await system.signIn("stuck@example.com", "a-closure-that-will-wait");
      const userId = userIdOf(token);
      const identity = system.client(IdentityService, "identity", "connect", token);
      await identity.closeAccount({ userId });
      await waitFor(async () => (await identity.getAccountClosure({ userId })).closure!.state === AccountClosureState.STUCK, "the closure to be stuck", 20_000);
      const stuck = (await identity.getAccountClosure({ userId })).closure!;
      assert.deepEqual(stuck.awaiting, ["audit", "notifications"], "it names whom it still awaits");
      const metrics = await (await fetch(`${system.adminUrl("identity")}/metrics`)).text();
      assert.match(metrics, /^meshwork_identity_account_closures\{[^}]*state="STUCK"[^}]*\} 1$/m);

      // audit and notifications come back, catch up on the stream, do their part and report: late is not lost.
      await system.startService("audit");
      await system.startService("notifications");
      await waitFor(async () => (await identity.getAccountClosure({ userId })).closure!.state === AccountClosureState.CLOSED, "the stuck closure to close", 30_000);
      const after = await (await fetch(`${system.adminUrl("identity")}/metrics`)).text();
      assert.match(after, /^meshwork_identity_account_closures\{[^}]*state="STUCK"[^}]*\} 0$/m);
    });
  });
});

/** What a service's own database holds (the test reads it; services never read each other's). */
function sqlite(system: TestSystem, service: string, sql: string, ...params: string[]): Record<string, unknown>[] {
  const db = new SQLite(path.join(system.dataDir, `${service}.db`), { readonly: true });
  try {
    return db.prepare(sql).all(...params) as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

import assert from "node:assert/strict";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import SQLite from "better-sqlite3";
import { AuditService } from "@meshwork/proto/meshwork/audit/v1/audit_pb.js";
import { OrdersService, OrderState, type Order } from "@meshwork/proto/meshwork/orders/v1/orders_pb.js";
import { PaymentsService } from "@meshwork/proto/meshwork/payments/v1/payments_pb.js";
import { ShippingService } from "@meshwork/proto/meshwork/shipping/v1/shipping_pb.js";
import { waitFor } from "../../scripts/lib/system.ts";
import { adminToken, TestSystem } from "../support/harness.ts";
import { OtlpReceiver } from "../support/otlp-receiver.ts";
import { postgresAvailable, ThrowawayPostgres } from "../support/postgres.ts";

describe("the checkout saga", function () {
  this.timeout(60_000);
  const receiver = new OtlpReceiver();
  // Filled in once the receiver listens; the harness reads it when it starts each service.
  const commonEnv: NodeJS.ProcessEnv = {};
  const system = new TestSystem({
    commonEnv,
    env: {
      // Fast polls and short leases, so a resumed saga is picked up within a second.
      orders: { SAGA_POLL_MS: "100", SAGA_LEASE_MS: "1000", SAGA_RETRY_BASE_MS: "100", SAGA_RETRY_MAX_MS: "500" },
      payments: { PAYMENTS_DECLINE_ABOVE_CENTS: "100000" },
      shipping: { SHIPPING_UNSERVICEABLE_COUNTRIES: "XX,YY" },
    },
  });
  let admin = "";
  let member = "";

  before(async () => {
    Object.assign(commonEnv, (await receiver.start()).env());
    await system.start();
    admin = await adminToken(system);
    member = await system.signIn("shopper@example.com", "a-shopper-passphrase");
  });
  after(async () => {
    await system.stop();
    await receiver.stop();
  });

  const orders = (token = member) => system.client(OrdersService, "orders", "connect", token);
  const place = (countryCode: string, unitPriceCents = 1_250n) =>
    orders().placeOrder({
      items: [{ sku: "mug", quantity: 2, unitPriceCents }],
      currency: "EUR",
      shippingAddress: { recipient: "Ada Lovelace", line1: "1 Main St", city: "Berlin", postalCode: "10115", countryCode },
    });
  const settled = async (id: string, state: OrderState): Promise<Order> => {
    let order: Order | undefined;
    await waitFor(async () => (order = (await orders().getOrder({ id })).order)?.state === state, `order ${id} to be ${OrderState[state]}`, 15_000, 50);
    return order!;
  };
  /** What a service's own database holds about an order (the test reads it; services never do). */
  const rows = (service: "payments" | "shipping" | "orders", sql: string, ...params: string[]) => {
    const db = new SQLite(path.join(system.dataDir, `${service}.db`), { readonly: true });
    try {
      return db.prepare(sql).all(...params) as Record<string, unknown>[];
    } finally {
      db.close();
    }
  };
  /** The subjects audit kept about an order, in publication order: audit consumes ORDERS, PAYMENTS and SHIPPING. */
  const audited = async (orderId: string): Promise<string[]> => {
    const page = await system.client(AuditService, "audit", "connect", admin).listEvents({ pageSize: 500 });
    return page.events
      .filter((event) => Object.values(JSON.parse(event.payloadJson) as Record<string, { orderId?: string }>)[0]?.orderId === orderId)
      .map((event) => event.subject);
  };
  const auditedEventually = async (orderId: string, expected: string[]) => {
    await waitFor(async () => (await audited(orderId)).length >= expected.length, `${expected.length} audited events of order ${orderId}`, 10_000, 100);
    // Anything duplicated or extra would arrive within this window too.
    await sleep(500);
    assert.deepEqual(await audited(orderId), expected);
  };
  const streamMessages = async (stream: string) => (await (await system.jsm()).streams.info(stream)).state.messages;

  it("confirms an order: one charge, one shipment, events on ORDERS, PAYMENTS and SHIPPING, all audited", async () => {
    const { order: placed } = await place("DE");
    assert.equal(placed!.state, OrderState.PENDING, "PlaceOrder answers before the saga runs");
    assert.equal(placed!.amountCents, 2_500n);

    const order = await settled(placed!.id, OrderState.CONFIRMED);
    assert.ok(order.paymentId && order.shipmentId);
    assert.deepEqual(rows("payments", "select id, state from payments where order_id = ?", order.id), [{ id: order.paymentId, state: "CHARGED" }]);
    assert.deepEqual(rows("shipping", "select id from shipments where order_id = ?", order.id), [{ id: order.shipmentId }]);
    for (const stream of ["ORDERS", "PAYMENTS", "SHIPPING"]) assert.ok((await streamMessages(stream)) > 0, `${stream} has events`);
    await auditedEventually(order.id, ["orders.v1.order.placed", "payments.v1.payment.charged", "shipping.v1.shipment.created", "orders.v1.order.confirmed"]);
  });

  it("follows an order's whole saga in the trace of the PlaceOrder call", async () => {
    const { order: placed } = await place("DE");
    await settled(placed!.id, OrderState.CONFIRMED);
    await waitFor(async () => (await audited(placed!.id)).length === 4, "the saga's events in audit");
    const events = (await system.client(AuditService, "audit", "connect", admin).listEvents({ pageSize: 500 })).events.filter((event) =>
      event.payloadJson.includes(placed!.id),
    );
    const traceIds = new Set(events.map((event) => event.traceId));
    assert.equal(traceIds.size, 1, `one trace for placed, charged, shipped and confirmed: ${[...traceIds].join(", ")}`);
    const [traceId] = traceIds;
    const names = () => receiver.trace(traceId!).map((span) => `${span.service}:${span.name}`);
    const expected = [
      "orders:meshwork.orders.v1.OrdersService/PlaceOrder",
      "orders:orders saga charge",
      "payments:meshwork.payments.v1.PaymentsService/Charge",
      "orders:orders saga ship",
      "shipping:meshwork.shipping.v1.ShippingService/CreateShipment",
      "orders:orders.v1.order.confirmed publish",
    ];
    await waitFor(() => expected.every((name) => names().includes(name)), "the saga's spans", 10_000, 100).catch(() => {
      assert.fail(`missing ${expected.filter((name) => !names().includes(name)).join(", ")} in ${names().join(", ")}`);
    });
  });

  it("refunds the payment exactly once and cancels the order when shipping cannot serve the address", async () => {
    const { order: placed } = await place("XX");
    const order = await settled(placed!.id, OrderState.CANCELLED);
    assert.match(order.cancellationReason, /not serviceable.*XX/);
    assert.ok(order.paymentId, "it was charged before the shipment failed");
    assert.equal(order.shipmentId, "");
    assert.deepEqual(rows("payments", "select id, state from payments where order_id = ?", order.id), [{ id: order.paymentId, state: "REFUNDED" }]);
    assert.deepEqual(rows("shipping", "select id from shipments where order_id = ?", order.id), []);
    await auditedEventually(order.id, ["orders.v1.order.placed", "payments.v1.payment.charged", "payments.v1.payment.refunded", "orders.v1.order.cancelled"]);
  });

  it("cancels a declined order without refunding or shipping anything", async () => {
    const { order: placed } = await place("DE", 60_000n);
    const order = await settled(placed!.id, OrderState.CANCELLED);
    assert.match(order.cancellationReason, /payment declined/);
    assert.equal(order.paymentId, "");
    assert.deepEqual(rows("payments", "select id from payments where order_id = ?", order.id), []);
    await auditedEventually(order.id, ["orders.v1.order.placed", "orders.v1.order.cancelled"]);
  });

  it("resumes a saga after orders is killed between the charge and recording it, without charging twice", async () => {
    await system.stopService("orders");
    const crashing = await system.startService("orders", { MESHWORK_FAULTS: "crash-after-call=meshwork.payments.v1.PaymentsService/Charge" });
    let orderId = "";
    try {
      // The answer usually leaves before the crash; if not, the order is in orders' database anyway.
      const placed = await place("DE").catch(() => undefined);
      assert.equal(await crashing.exited, -1, "killed by the fault hook");
      assert.match(crashing.output(), /fault crash-after-call: killing the process after meshwork\.payments\.v1\.PaymentsService\/Charge answered/);
      orderId = placed?.order?.id ?? String(rows("orders", "select id from orders order by created_at desc limit 1")[0]!["id"]);
      assert.deepEqual(rows("orders", "select state from orders where id = ?", orderId), [{ state: "PENDING" }], "the charge was never recorded");
      assert.equal(rows("payments", "select id from payments where order_id = ?", orderId).length, 1, "but the money moved");
    } finally {
      await system.stopService("orders", "SIGKILL");
      await system.startService("orders");
    }
    const order = await settled(orderId, OrderState.CONFIRMED);
    const charges = rows("payments", "select id from payments where order_id = ?", orderId);
    assert.deepEqual(charges, [{ id: order.paymentId }], "the retried charge answered the first payment");
    await auditedEventually(orderId, ["orders.v1.order.placed", "payments.v1.payment.charged", "shipping.v1.shipment.created", "orders.v1.order.confirmed"]);
  });

  it("stops the saga runner before the database closes: SIGTERM mid-saga, a restart, and the saga completes exactly once", async () => {
    await system.stopService("orders");
    // The charge waits 2 s before it is sent, so the SIGTERM below lands while the step is in flight.
    const stopping = await system.startService("orders", { MESHWORK_FAULTS: "delay-call=meshwork.payments.v1.PaymentsService/Charge:2000" });
    let orderId = "";
    try {
      const { order: placed } = await place("DE");
      orderId = placed!.id;
      await waitFor(() => rows("orders", "select id from orders where id = ? and lease_until is not null", orderId).length === 1, "the runner to claim the saga", 5_000, 20);
      stopping.child.kill("SIGTERM");
      assert.equal(await stopping.exited, 0, `orders exits cleanly:\n${stopping.output()}`);
      assert.doesNotMatch(stopping.output(), /saga runner pass failed|unclean shutdown|worker failed/);
      assert.deepEqual(rows("orders", "select state from orders where id = ?", orderId), [{ state: "PAYMENT_CHARGED" }], "the step in flight was recorded before the database closed");
    } finally {
      await system.stopService("orders", "SIGKILL");
      await system.startService("orders");
    }
    const order = await settled(orderId, OrderState.CONFIRMED);
    assert.deepEqual(rows("payments", "select id from payments where order_id = ?", orderId), [{ id: order.paymentId }], "charged once");
    assert.deepEqual(rows("shipping", "select id from shipments where order_id = ?", orderId), [{ id: order.shipmentId }], "shipped once");
    await auditedEventually(orderId, ["orders.v1.order.placed", "payments.v1.payment.charged", "shipping.v1.shipment.created", "orders.v1.order.confirmed"]);
  });

  it("keeps payments and shipping to the saga: a member calling them directly is denied", async () => {
    const denied = async (call: Promise<unknown>, code: Code) => {
      const error = await call.then(() => undefined, (caught: unknown) => ConnectError.from(caught));
      assert.equal(error?.code, code, `expected ${Code[code]}, got ${error ? Code[error.code] : "success"}`);
    };
    const payments = system.client(PaymentsService, "payments", "connect", member);
    await denied(payments.charge({ idempotencyKey: "member:free-money", orderId: "o", userId: "u", amountCents: 1n, currency: "EUR" }), Code.PermissionDenied);
    await denied(payments.refund({ idempotencyKey: "member:refund", paymentId: "p" }), Code.PermissionDenied);
    await denied(system.client(ShippingService, "shipping", "connect", member).createShipment({ idempotencyKey: "k", orderId: "o" }), Code.PermissionDenied);
    await denied(system.client(PaymentsService, "payments").charge({ idempotencyKey: "anonymous" }), Code.Unauthenticated);
    assert.deepEqual(rows("payments", "select id from payments where charge_key like 'member:%'"), []);
  });

  it("shows an order to its owner and an admin only", async () => {
    const { order } = await place("DE");
    const other = await system.signIn("someone-else@example.com", "another-shopper-passphrase");
    await assert.rejects(orders(other).getOrder({ id: order!.id }), (error: unknown) => ConnectError.from(error).code === Code.NotFound);
    assert.equal((await orders(admin).getOrder({ id: order!.id })).order?.id, order!.id);
  });
});

describe("the checkout saga on PostgreSQL", function () {
  this.timeout(60_000);
  const postgres = new ThrowawayPostgres();
  let system: TestSystem | undefined;

  before(async function () {
    if (!postgresAvailable()) this.skip();
    await postgres.start(["orders", "payments", "shipping"]);
    system = new TestSystem({
      services: ["identity", "payments", "shipping", "orders"],
      env: {
        orders: { DATABASE_URL: postgres.url("orders"), SAGA_POLL_MS: "100" },
        payments: { DATABASE_URL: postgres.url("payments") },
        shipping: { DATABASE_URL: postgres.url("shipping") },
      },
    });
    await system.start();
  });
  after(async () => {
    await system?.stop();
    await postgres.stop();
  });

  it("confirms one order and refunds another with each service on its own database", async () => {
    const orders = system!.client(OrdersService, "orders", "connect", await system!.signIn("pg-shopper@example.com", "a-postgres-passphrase"));
    for (const [countryCode, state] of [["DE", OrderState.CONFIRMED], ["XX", OrderState.CANCELLED]] as const) {
      const { order } = await orders.placeOrder({ items: [{ sku: "mug", quantity: 1, unitPriceCents: 900n }], shippingAddress: { recipient: "Ada", line1: "1 Main St", city: "Berlin", countryCode } });
      await waitFor(async () => (await orders.getOrder({ id: order!.id })).order?.state === state, `order to be ${OrderState[state]}`, 15_000, 50);
    }
    assert.equal(await postgres.query("select state, count(*)::int as n from payments group by state order by state", "payments", "payments"), '[{"state":"CHARGED","n":1},{"state":"REFUNDED","n":1}]');
    assert.equal(await postgres.query("select count(*)::int as n from shipments", "shipping", "shipping"), '[{"n":1}]');
    await waitFor(async () => (await postgres.query("select count(*)::int as n from outbox where published_at is null", "orders", "orders")) === '[{"n":0}]', "orders' outbox drained");
  });
});

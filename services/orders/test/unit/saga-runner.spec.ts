import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger, openDatabase, type Database } from "@meshwork/platform";
import type { Step, StepOutcome } from "../../src/domain/saga.ts";
import { SagaRunner } from "../../src/saga-runner.ts";
import type { SagaSteps } from "../../src/steps.ts";
import { withdrawAccountOrders } from "../../src/account-closure.ts";
import { findOrder, insertOrder, migrations, type OrderRecord, type OrdersTables } from "../../src/store.ts";

/** Steps that answer from a script and remember every call, instead of calling payments and shipping. */
class ScriptedSteps implements SagaSteps {
  readonly calls: string[] = [];
  private readonly script: Partial<Record<Step, StepOutcome[]>>;

  constructor(script: Partial<Record<Step, StepOutcome[]>> = {}) {
    this.script = script;
  }

  async run(step: Step, order: OrderRecord): Promise<StepOutcome> {
    this.calls.push(`${order.id}:${step}`);
    await sleep(1);
    const scripted = this.script[step]?.shift();
    if (scripted) return scripted;
    return step === "charge" ? { kind: "succeeded", paymentId: `pay-${order.id}` } : step === "ship" ? { kind: "succeeded", shipmentId: `ship-${order.id}` } : { kind: "succeeded" };
  }
}

describe("the saga runner", () => {
  let database: Database<OrdersTables>;
  const runners: SagaRunner[] = [];
  const log = createLogger({ service: "orders-test", level: "silent", format: "json" });

  beforeEach(async () => {
    database = await openDatabase<OrdersTables>("sqlite::memory:", migrations);
  });
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((runner) => runner.stop()));
    await database.close();
  });

  const runner = (steps: SagaSteps, options: { leaseMs?: number } = {}) => {
    const created = new SagaRunner({
      db: database.db,
      unitOfWork: (work) => database.db.transaction().execute(work),
      steps,
      log,
      pollMs: 20,
      leaseMs: options.leaseMs ?? 5_000,
      retryBaseMs: 20,
      retryMaxMs: 40,
    });
    runners.push(created);
    created.start();
    return created;
  };
  const place = async (id: string, leaseUntil: number | null = null) => {
    const now = Date.now();
    await insertOrder(database.db, {
      id,
      userId: "u1",
      items: [{ sku: "mug", quantity: 1, unitPriceCents: 100 }],
      amountCents: 100,
      currency: "EUR",
      address: { recipient: "Ada", line1: "1 Main St", city: "Berlin", postalCode: "10115", countryCode: "DE" },
      state: "PENDING",
      paymentId: null,
      shipmentId: null,
      cancellationReason: null,
      attempts: 0,
      traceparent: null,
      createdAt: now,
      updatedAt: now,
    });
    if (leaseUntil !== null) await database.db.updateTable("orders").set({ lease_until: leaseUntil }).where("id", "=", id).execute();
  };
  const finished = async (id: string) => {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const order = await findOrder(database.db, id);
      if (order && (order.state === "CONFIRMED" || order.state === "CANCELLED")) return order;
      if (Date.now() > deadline) throw new Error(`order ${id} is still ${order?.state}`);
      await sleep(10);
    }
  };
  const outbox = async () => (await database.db.selectFrom("outbox").select(["subject", "aggregate_id"]).orderBy("seq").execute()).map((row) => `${row.aggregate_id}:${row.subject}`);

  it("drives a placed order to CONFIRMED, one call per step, with the confirmation in the outbox", async () => {
    const steps = new ScriptedSteps();
    runner(steps);
    await place("o1");
    const order = await finished("o1");
    assert.equal(order.state, "CONFIRMED");
    assert.equal(order.paymentId, "pay-o1");
    assert.equal(order.shipmentId, "ship-o1");
    assert.deepEqual(steps.calls, ["o1:charge", "o1:ship"]);
    assert.deepEqual(await outbox(), ["o1:orders.v1.order.confirmed"]);
  });

  it("refunds and cancels when the shipment is rejected, announcing only the cancellation", async () => {
    const steps = new ScriptedSteps({ ship: [{ kind: "rejected", reason: "destination not serviceable" }] });
    runner(steps);
    await place("o1");
    const order = await finished("o1");
    assert.equal(order.state, "CANCELLED");
    assert.equal(order.cancellationReason, "destination not serviceable");
    assert.deepEqual(steps.calls, ["o1:charge", "o1:ship", "o1:refund"]);
    assert.deepEqual(await outbox(), ["o1:orders.v1.order.cancelled"]);
  });

  it("withdraws a closing account's orders: cancels the uncharged, refunds the charged, then reports once", async () => {
    // Shipping keeps failing, so the charged order waits in PAYMENT_CHARGED until the account closes.
    const failing: StepOutcome = { kind: "failed", error: "Unavailable: shipping is down" };
    const steps = new ScriptedSteps({ ship: Array.from({ length: 100 }, () => failing) });
    const saga = runner(steps);
    await place("charged");
    for (const deadline = Date.now() + 5_000; (await findOrder(database.db, "charged"))?.state !== "PAYMENT_CHARGED"; await sleep(10)) {
      if (Date.now() > deadline) throw new Error("the order was never charged");
    }
    await saga.stop();
    await place("uncharged");
    await database.db.transaction().execute((trx) => withdrawAccountOrders(trx, "u1"));
    // A redelivered request changes nothing.
    await database.db.transaction().execute((trx) => withdrawAccountOrders(trx, "u1"));
    assert.deepEqual(await outbox(), [], "orders reports only once nothing is left open");
    runner(steps);
    const [charged, uncharged] = [await finished("charged"), await finished("uncharged")];
    assert.equal(charged.state, "CANCELLED");
    assert.equal(charged.cancellationReason, "account closed");
    assert.equal(uncharged.state, "CANCELLED");
    assert.ok(steps.calls.includes("charged:refund"), "the charge is refunded");
    assert.ok(!steps.calls.includes("uncharged:charge"), "an uncharged order is never charged");
    for (const deadline = Date.now() + 5_000; !(await outbox()).includes("u1:orders.v1.account.orders_closed"); await sleep(10)) {
      if (Date.now() > deadline) throw new Error(`no report: ${(await outbox()).join(", ")}`);
    }
    assert.deepEqual((await outbox()).sort(), ["charged:orders.v1.order.cancelled", "u1:orders.v1.account.orders_closed", "uncharged:orders.v1.order.cancelled"]);
  });

  it("reports a closing account with no open order at once", async () => {
    await database.db.transaction().execute((trx) => withdrawAccountOrders(trx, "nobody"));
    assert.deepEqual(await outbox(), ["nobody:orders.v1.account.orders_closed"]);
  });

  it("retries a failing step after a backoff and carries on from the same state", async () => {
    const unavailable: StepOutcome = { kind: "failed", error: "Unavailable: payments is down" };
    const steps = new ScriptedSteps({ charge: [unavailable, unavailable] });
    runner(steps);
    await place("o1");
    const order = await finished("o1");
    assert.equal(order.state, "CONFIRMED");
    assert.deepEqual(steps.calls, ["o1:charge", "o1:charge", "o1:charge", "o1:ship"]);
    assert.equal(order.attempts, 0, "the tries are counted per step");
  });

  it("leaves a saga held by another runner alone until its lease lapses, then resumes it", async () => {
    const steps = new ScriptedSteps();
    runner(steps);
    await place("o1", Date.now() + 300);
    await sleep(150);
    assert.deepEqual(steps.calls, [], "the lease is respected");
    const order = await finished("o1");
    assert.equal(order.state, "CONFIRMED");
    assert.deepEqual(steps.calls, ["o1:charge", "o1:ship"]);
  });

  it("lets two runners share a database and still drives each saga once", async () => {
    const steps = new ScriptedSteps();
    const ids = Array.from({ length: 10 }, (_, index) => `o${index}`);
    for (const id of ids) await place(id);
    // Both start at once, so both find the same ten due sagas: the lease decides who drives each.
    runner(steps);
    runner(steps);
    for (const id of ids) assert.equal((await finished(id)).state, "CONFIRMED");
    for (const id of ids) assert.deepEqual(steps.calls.filter((call) => call.startsWith(`${id}:`)), [`${id}:charge`, `${id}:ship`]);
    assert.equal((await outbox()).length, ids.length, "one confirmation per order");
  });
});

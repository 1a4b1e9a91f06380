import assert from "node:assert/strict";
import { advance, idempotencyKey, isFinal, ORDER_STATES, retryDelayMs, stepFor, type SagaView } from "../../src/domain/saga.ts";

const pending: SagaView = { state: "PENDING", paymentId: null, shipmentId: null, cancellationReason: null };
const charged: SagaView = { ...pending, state: "PAYMENT_CHARGED", paymentId: "p1" };
const refunding: SagaView = { ...charged, state: "REFUNDING", cancellationReason: "destination not serviceable" };

describe("the checkout saga", () => {
  it("charges, then ships, then refunds, and does nothing once an order is final", () => {
    assert.equal(stepFor("PENDING"), "charge");
    assert.equal(stepFor("PAYMENT_CHARGED"), "ship");
    assert.equal(stepFor("REFUNDING"), "refund");
    assert.equal(stepFor("CONFIRMED"), undefined);
    assert.equal(stepFor("CANCELLED"), undefined);
    assert.deepEqual(ORDER_STATES.filter(isFinal), ["CONFIRMED", "CANCELLED"]);
  });

  it("confirms an order whose charge and shipment succeed, announcing it once at the end", () => {
    const afterCharge = advance(pending, { kind: "succeeded", paymentId: "p1" });
    assert.deepEqual(afterCharge, { kind: "transition", to: "PAYMENT_CHARGED", paymentId: "p1", shipmentId: null, cancellationReason: null });
    const afterShip = advance(charged, { kind: "succeeded", shipmentId: "s1" });
    assert.deepEqual(afterShip, { kind: "transition", to: "CONFIRMED", paymentId: "p1", shipmentId: "s1", cancellationReason: null, emit: "confirmed" });
  });

  it("cancels an order whose payment is declined, without a refund", () => {
    const declined = advance(pending, { kind: "rejected", reason: "payment declined: over the limit" });
    assert.deepEqual(declined, { kind: "transition", to: "CANCELLED", paymentId: null, shipmentId: null, cancellationReason: "payment declined: over the limit", emit: "cancelled" });
  });

  it("refunds a charged order whose shipment is rejected, then cancels it keeping the reason", () => {
    const rejected = advance(charged, { kind: "rejected", reason: "destination not serviceable" });
    assert.deepEqual(rejected, { kind: "transition", to: "REFUNDING", paymentId: "p1", shipmentId: null, cancellationReason: "destination not serviceable" });
    assert.equal("emit" in rejected && rejected.emit, false, "nothing announced until the money is back");
    const refunded = advance(refunding, { kind: "succeeded" });
    assert.deepEqual(refunded, { kind: "transition", to: "CANCELLED", paymentId: "p1", shipmentId: null, cancellationReason: "destination not serviceable", emit: "cancelled" });
  });

  it("retries a step that failed for a passing reason, in the same state", () => {
    for (const saga of [pending, charged, refunding]) {
      assert.deepEqual(advance(saga, { kind: "failed", error: "unavailable" }), { kind: "retry", reason: "unavailable" });
    }
  });

  it("never gives up a refund: a refusal is retried, not turned into a cancellation", () => {
    assert.equal(advance(refunding, { kind: "rejected", reason: "no such payment" }).kind, "retry");
  });

  it("refuses to advance a final order", () => {
    assert.throws(() => advance({ ...charged, state: "CONFIRMED" }, { kind: "succeeded" }), /no step/);
    assert.throws(() => advance({ ...charged, state: "CANCELLED" }, { kind: "failed", error: "x" }), /no step/);
  });

  it("derives each step's idempotency key from the order, so a repeated call is the same call", () => {
    assert.equal(idempotencyKey("o1", "charge"), idempotencyKey("o1", "charge"));
    assert.notEqual(idempotencyKey("o1", "charge"), idempotencyKey("o1", "refund"));
    assert.notEqual(idempotencyKey("o1", "charge"), idempotencyKey("o2", "charge"));
  });

  it("backs off exponentially up to a cap", () => {
    assert.deepEqual([1, 2, 3, 4, 10].map((attempt) => retryDelayMs(attempt, 100, 1_000)), [100, 200, 400, 800, 1_000]);
  });
});

import assert from "node:assert/strict";
import { Code } from "@connectrpc/connect";
import { assertSameCharge, checkChargeInput, declineReason, PaymentDeclinedError, type ChargeInput, type PaymentRecord } from "../../src/domain/charges.ts";

const charge: ChargeInput = { idempotencyKey: "order:o1:charge", orderId: "o1", userId: "u1", amountCents: 4_200, currency: "EUR" };
const stored: PaymentRecord = {
  id: "p1",
  chargeKey: charge.idempotencyKey,
  orderId: "o1",
  userId: "u1",
  amountCents: 4_200,
  currency: "EUR",
  state: "CHARGED",
  chargedAt: 0,
  refundKey: null,
  refundReason: null,
  refundedAt: null,
};

describe("charges", () => {
  it("declines an amount over the limit and accepts one at it", () => {
    assert.match(declineReason({ amountCents: 100_001 }, 100_000) ?? "", /exceeds the limit/);
    assert.equal(declineReason({ amountCents: 100_000 }, 100_000), undefined);
  });

  it("answers a decline as FailedPrecondition, so the saga compensates instead of retrying", () => {
    assert.equal(new PaymentDeclinedError("limit").code, Code.FailedPrecondition);
  });

  it("refuses a charge without a key, a positive amount or a currency code", () => {
    assert.throws(() => checkChargeInput({ ...charge, idempotencyKey: " " }), /idempotency_key/);
    assert.throws(() => checkChargeInput({ ...charge, amountCents: 0 }), /positive/);
    assert.throws(() => checkChargeInput({ ...charge, currency: "euro" }), /ISO 4217/);
    assert.doesNotThrow(() => checkChargeInput(charge));
  });

  it("accepts a retry of the same charge and refuses a key reused for another", () => {
    assert.doesNotThrow(() => assertSameCharge(stored, charge));
    assert.throws(() => assertSameCharge(stored, { ...charge, amountCents: 5_000 }), /different charge/);
    assert.throws(() => assertSameCharge(stored, { ...charge, orderId: "o2" }), /different charge/);
  });
});

import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { contractViolations } from "@meshwork/platform";
import { ChargeRequestSchema, RefundRequestSchema } from "@meshwork/proto/meshwork/payments/v1/payments_pb.js";
import { assertSameCharge, declineReason, PaymentDeclinedError, type ChargeInput, type PaymentRecord } from "../../src/domain/charges.ts";

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

  it("accepts a retry of the same charge and refuses a key reused for another", () => {
    assert.doesNotThrow(() => assertSameCharge(stored, charge));
    assert.throws(() => assertSameCharge(stored, { ...charge, amountCents: 5_000 }), /different charge/);
    assert.throws(() => assertSameCharge(stored, { ...charge, orderId: "o2" }), /different charge/);
  });
});

describe("the payments contract (payments.proto rules)", () => {
  const id = "01890a5d-ac96-774b-bcce-b302099a8057";
  const valid = { idempotencyKey: "order:01890a5d-ac96-774b-bcce-b302099a8057:charge", orderId: id, userId: id, amountCents: 4_200n, currency: "EUR" };

  it("admits the saga's charge and refuses a missing or oversized key, a non-UUID id, a non-positive amount and a currency name", () => {
    assert.deepEqual(contractViolations(ChargeRequestSchema, create(ChargeRequestSchema, valid)), []);
    const refused: [Partial<typeof valid>, RegExp][] = [
      [{ idempotencyKey: "" }, /^idempotency_key: .*\[string\.min_len\]/],
      [{ idempotencyKey: "k".repeat(129) }, /^idempotency_key: .*\[string\.max_len\]/],
      [{ orderId: "o".repeat(1_000_000) }, /^order_id: .*\[string\.uuid\]/],
      [{ amountCents: 0n }, /^amount_cents: .*\[int64\.gt_lte\]/],
      [{ currency: "euro" }, /^currency: .*\[string\.pattern\]/],
    ];
    for (const [change, expected] of refused) assert.match(contractViolations(ChargeRequestSchema, create(ChargeRequestSchema, { ...valid, ...change })).join("; "), expected);
  });

  it("bounds a refund's reason", () => {
    const refund = { idempotencyKey: "order:x:refund", paymentId: id };
    assert.deepEqual(contractViolations(RefundRequestSchema, create(RefundRequestSchema, { ...refund, reason: "r".repeat(500) })), []);
    assert.match(contractViolations(RefundRequestSchema, create(RefundRequestSchema, { ...refund, reason: "r".repeat(501) })).join(), /^reason: .*\[string\.max_len\]/);
  });
});

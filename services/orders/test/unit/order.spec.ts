import assert from "node:assert/strict";
import { validateOrder, type NewOrder } from "../../src/domain/order.ts";

const order: NewOrder = {
  items: [
    { sku: "mug", quantity: 2, unitPriceCents: 1_250 },
    { sku: "tee", quantity: 1, unitPriceCents: 2_000 },
  ],
  currency: "EUR",
  address: { recipient: "Ada", line1: "1 Main St", city: "Berlin", postalCode: "10115", countryCode: "DE" },
};

describe("placing an order", () => {
  it("computes the total from the items", () => {
    assert.deepEqual(validateOrder(order), { amountCents: 4_500 });
  });

  it("refuses an empty order, a non-positive quantity and a missing address", () => {
    assert.throws(() => validateOrder({ ...order, items: [] }), /at least one item/);
    assert.throws(() => validateOrder({ ...order, items: [{ sku: "mug", quantity: 0, unitPriceCents: 1 }] }), /quantity/);
    assert.throws(() => validateOrder({ ...order, address: { ...order.address, city: " " } }), /shipping_address\.city/);
    assert.throws(() => validateOrder({ ...order, address: { ...order.address, countryCode: "Germany" } }), /alpha-2/);
  });
});

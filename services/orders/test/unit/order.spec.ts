import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import fc from "fast-check";
import { contractViolations, InvalidArgumentError } from "@meshwork/platform";
import { PlaceOrderRequestSchema, type PlaceOrderRequest } from "@meshwork/proto/meshwork/orders/v1/orders_pb.js";
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

  it("refuses an order that costs nothing", () => {
    assert.throws(() => validateOrder({ ...order, items: [{ sku: "free", quantity: 3, unitPriceCents: 0 }] }), InvalidArgumentError);
  });

  it("totals every order the contract admits exactly, and never throws anything but InvalidArgument", () => {
    // Bounds from orders.proto: 1..100 items, quantity 1..1000, unit price 0..10,000,000 cents.
    const item = fc.record({ sku: fc.string({ minLength: 1, maxLength: 64 }), quantity: fc.integer({ min: 1, max: 1_000 }), unitPriceCents: fc.integer({ min: 0, max: 10_000_000 }) });
    fc.assert(
      fc.property(fc.array(item, { minLength: 1, maxLength: 100 }), (items) => {
        const expected = items.reduce((total, { quantity, unitPriceCents }) => total + BigInt(quantity) * BigInt(unitPriceCents), 0n);
        try {
          const { amountCents } = validateOrder({ ...order, items });
          assert.ok(Number.isSafeInteger(amountCents));
          assert.equal(BigInt(amountCents), expected);
        } catch (error) {
          assert.ok(error instanceof InvalidArgumentError);
          assert.equal(expected, 0n);
        }
      }),
    );
  });
});

describe("the PlaceOrder contract (orders.proto rules)", () => {
  const item = { sku: "mug", quantity: 2, unitPriceCents: 1_250n };
  const address = { recipient: "Ada", line1: "1 Main St", city: "Berlin", postalCode: "10115", countryCode: "DE" };
  const request = (changes: { items?: (typeof item)[]; currency?: string; shippingAddress?: typeof address } = {}) =>
    create(PlaceOrderRequestSchema, { items: [item], currency: "EUR", shippingAddress: address, ...changes });

  it("admits a complete order, and an empty currency (EUR)", () => {
    assert.deepEqual(contractViolations(PlaceOrderRequestSchema, request()), []);
    assert.deepEqual(contractViolations(PlaceOrderRequestSchema, request({ currency: "" })), []);
  });

  it("refuses no items, too many, a non-positive quantity, a blank city, a country name and a missing address", () => {
    const refused: [string, PlaceOrderRequest, RegExp][] = [
      ["no items", request({ items: [] }), /^items: .*\[repeated\.min_items\]/],
      ["101 items", request({ items: Array.from({ length: 101 }, () => item) }), /^items: .*\[repeated\.max_items\]/],
      ["quantity 0", request({ items: [{ ...item, quantity: 0 }] }), /^items\[0\]\.quantity: .*\[int32\.gt_lte\]/],
      ["no city", request({ shippingAddress: { ...address, city: "" } }), /^shipping_address\.city: .*\[string\.min_len\]/],
      ["a country name", request({ shippingAddress: { ...address, countryCode: "Germany" } }), /^shipping_address\.country_code: .*\[string\.pattern\]/],
      ["a currency name", request({ currency: "euro" }), /^currency: .*\[string\.pattern\]/],
      ["no address", request({ shippingAddress: undefined }), /^shipping_address: .*\[required\]/],
    ];
    for (const [name, message, expected] of refused) {
      const violations = contractViolations(PlaceOrderRequestSchema, message);
      assert.equal(violations.length, 1, `${name}: ${violations.join("; ")}`);
      assert.match(violations[0]!, expected, name);
    }
  });
});

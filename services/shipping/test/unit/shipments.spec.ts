import assert from "node:assert/strict";
import { Code } from "@connectrpc/connect";
import { assertServiceable, checkShipmentInput, UnserviceableDestinationError, type ShipmentInput } from "../../src/domain/shipments.ts";

const input: ShipmentInput = {
  idempotencyKey: "order:o1:ship",
  orderId: "o1",
  userId: "u1",
  address: { recipient: "Ada", line1: "1 Main St", city: "Berlin", postalCode: "10115", countryCode: "DE" },
};

describe("shipments", () => {
  it("refuses an unserviceable destination with FailedPrecondition and a message naming it", () => {
    assert.throws(
      () => assertServiceable("xx", ["XX"]),
      (error: unknown) => error instanceof UnserviceableDestinationError && error.code === Code.FailedPrecondition && /not serviceable.*XX/i.test(error.message),
    );
    assert.doesNotThrow(() => assertServiceable("DE", ["XX"]));
  });

  it("needs a key, an order, a recipient, a street, a city and a two-letter country code", () => {
    assert.doesNotThrow(() => checkShipmentInput(input));
    assert.throws(() => checkShipmentInput({ ...input, address: { ...input.address, city: "" } }), /address\.city/);
    assert.throws(() => checkShipmentInput({ ...input, address: { ...input.address, countryCode: "DEU" } }), /alpha-2/);
  });
});

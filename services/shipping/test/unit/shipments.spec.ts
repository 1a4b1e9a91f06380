import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { contractViolations } from "@meshwork/platform";
import { CreateShipmentRequestSchema } from "@meshwork/proto/meshwork/shipping/v1/shipping_pb.js";
import { assertServiceable, UnserviceableDestinationError } from "../../src/domain/shipments.ts";

describe("shipments", () => {
  it("refuses an unserviceable destination with FailedPrecondition and a message naming it", () => {
    assert.throws(
      () => assertServiceable("xx", ["XX"]),
      (error: unknown) => error instanceof UnserviceableDestinationError && error.code === Code.FailedPrecondition && /not serviceable.*XX/i.test(error.message),
    );
    assert.doesNotThrow(() => assertServiceable("DE", ["XX"]));
  });
});

describe("the CreateShipment contract (shipping.proto rules)", () => {
  const id = "01890a5d-ac96-774b-bcce-b302099a8057";
  const address = { recipient: "Ada", line1: "1 Main St", city: "Berlin", postalCode: "10115", countryCode: "DE" };
  const request = (changes: { address?: typeof address; orderId?: string } = {}) =>
    create(CreateShipmentRequestSchema, { idempotencyKey: `order:${id}:ship`, orderId: id, userId: id, address, ...changes });

  it("needs an address with a recipient, a street, a city and a two-letter country code, and UUIDs", () => {
    assert.deepEqual(contractViolations(CreateShipmentRequestSchema, request()), []);
    assert.match(contractViolations(CreateShipmentRequestSchema, request({ address: undefined })).join(), /^address: .*\[required\]/);
    assert.match(contractViolations(CreateShipmentRequestSchema, request({ address: { ...address, city: "" } })).join(), /^address\.city: .*\[string\.min_len\]/);
    assert.match(contractViolations(CreateShipmentRequestSchema, request({ address: { ...address, countryCode: "DEU" } })).join(), /^address\.country_code: .*\[string\.pattern\]/);
    assert.match(contractViolations(CreateShipmentRequestSchema, request({ orderId: "o1" })).join(), /^order_id: .*\[string\.uuid\]/);
  });
});

import assert from "node:assert/strict";
import fc from "fast-check";
import { InvalidArgumentError } from "@meshwork/platform";
import { decodePageToken, encodePageToken, MAX_PAGE_SIZE, pageSize } from "../../src/domain/paging.ts";

describe("audit paging, for any input (fast-check)", () => {
  it("decodes every token it encodes back to the same event id", () => {
    fc.assert(fc.property(fc.uuid(), (id) => assert.equal(decodePageToken(encodePageToken(id)), id)));
  });

  it("reads any string as a token or refuses it as InvalidArgument", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (token) => {
        try {
          const id = decodePageToken(token);
          assert.ok(id === undefined || typeof id === "string");
        } catch (error) {
          assert.ok(error instanceof InvalidArgumentError, String(error));
        }
      }),
    );
  });

  it("answers a page size between 1 and the maximum for any non-negative request", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), (requested) => {
        const size = pageSize(requested);
        assert.ok(size >= 1 && size <= MAX_PAGE_SIZE);
        if (requested > 0) assert.equal(size, Math.min(requested, MAX_PAGE_SIZE));
      }),
    );
  });
});

import assert from "node:assert/strict";
import fc from "fast-check";
import { InvalidArgumentError } from "@meshwork/platform";
import { pageOf } from "../../src/domain/pages.ts";

describe("presence pages, for any input (fast-check)", () => {
  it("visits every item exactly once, in order, following the page tokens", () => {
    fc.assert(
      fc.property(fc.array(fc.integer(), { maxLength: 300 }), fc.integer({ min: 1, max: 50 }), (items, size) => {
        const seen: number[] = [];
        let token = "";
        do {
          const page = pageOf(items, size, token);
          assert.ok(page.items.length <= size);
          seen.push(...page.items);
          token = page.nextPageToken;
        } while (token);
        assert.deepEqual(seen, items);
      }),
    );
  });

  it("reads any string as a token or refuses it as InvalidArgument", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), (token) => {
        try {
          pageOf([1, 2, 3], 2, token);
        } catch (error) {
          assert.ok(error instanceof InvalidArgumentError, String(error));
        }
      }),
    );
  });
});

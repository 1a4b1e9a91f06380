import assert from "node:assert/strict";
import { decodePageToken, encodePageToken, pageSize } from "../../src/domain/paging.ts";
import { redactPersonalData, userIdOf } from "../../src/domain/redaction.ts";

describe("redaction", () => {
  const payload = { signedIn: { userId: "u1", email: "ada@example.com", displayName: "Ada", sessionId: "s1" } };

  it("replaces emails and names anywhere in a payload and keeps the rest", () => {
    assert.deepEqual(redactPersonalData(payload), { signedIn: { userId: "u1", email: "[redacted]", displayName: "[redacted]", sessionId: "s1" } });
    assert.deepEqual(payload.signedIn.email, "ada@example.com", "the original is untouched");
  });

  it("finds the user an event is about", () => {
    assert.equal(userIdOf(payload), "u1");
    assert.equal(userIdOf({ other: 1 }), "");
  });
});

describe("paging", () => {
  it("round-trips page tokens and refuses forged ones", () => {
    assert.equal(decodePageToken(encodePageToken("01a2")), "01a2");
    assert.equal(decodePageToken(""), undefined);
    assert.throws(() => decodePageToken("bm9wZQ"), /page_token/);
  });

  it("defaults and caps the page size", () => {
    assert.equal(pageSize(0), 50);
    assert.equal(pageSize(10_000), 500);
    assert.throws(() => pageSize(-1), /negative/);
  });
});

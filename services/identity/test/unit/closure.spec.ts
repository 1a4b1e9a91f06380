import assert from "node:assert/strict";
import { afterReport, awaiting, erasedEmail, isOverdue, type ClosureView } from "../../src/domain/closure.ts";

describe("an account closure (identity's tracker)", () => {
  const expected = ["presence", "orders", "audit", "notifications"];
  const closure = (changes: Partial<ClosureView> = {}): ClosureView => ({ state: "PENDING", requestedAt: 1_000, reported: [], ...changes });

  it("awaits every expected participant that has not reported, in order", () => {
    assert.deepEqual(awaiting(expected, ["audit", "presence"]), ["orders", "notifications"]);
    assert.deepEqual(awaiting(expected, expected), []);
  });

  it("closes only when every expected participant has reported", () => {
    assert.equal(afterReport(closure({ reported: ["presence", "orders", "audit"] }), expected), "PENDING");
    assert.equal(afterReport(closure({ reported: [...expected] }), expected), "CLOSED");
    // A report from someone identity does not await closes nothing.
    assert.equal(afterReport(closure({ reported: ["presence", "orders", "audit", "billing"] }), expected), "PENDING");
  });

  it("closes a stuck closure when the late report arrives, and never reopens a closed one", () => {
    assert.equal(afterReport(closure({ state: "STUCK", reported: [...expected] }), expected), "CLOSED");
    assert.equal(afterReport(closure({ state: "STUCK", reported: ["presence"] }), expected), "STUCK");
    assert.equal(afterReport(closure({ state: "CLOSED", reported: [] }), expected), "CLOSED");
  });

  it("is overdue only while pending and past the timeout", () => {
    assert.equal(isOverdue(closure(), 1_000 + 60_000, 60_000), false);
    assert.equal(isOverdue(closure(), 1_000 + 60_001, 60_000), true);
    assert.equal(isOverdue(closure({ state: "STUCK" }), 10_000_000, 60_000), false);
    assert.equal(isOverdue(closure({ state: "CLOSED" }), 10_000_000, 60_000), false);
  });

  it("erases the email to an address that stays unique and can never be delivered", () => {
    assert.equal(erasedEmail("0190a5d0-0000-7000-8000-000000000001"), "closed-0190a5d0-0000-7000-8000-000000000001@erased.invalid");
  });
});

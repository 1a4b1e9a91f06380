import assert from "node:assert/strict";
import { InvalidArgumentError } from "@meshwork/platform";
import { checkPasswordPolicy, normaliseEmail } from "../../src/domain/credentials.ts";
import { parseRoles } from "../../src/domain/roles.ts";
import { FailureThrottle, MemoryFailureLog } from "../../src/domain/throttle.ts";

describe("credentials", () => {
  it("normalises an email to one account per mailbox", () => {
    assert.equal(normaliseEmail("  Ada@Example.COM "), "ada@example.com");
    for (const bad of ["", "ada", "ada@", "@example.com", "ada@example", "a b@example.com"]) assert.throws(() => normaliseEmail(bad), InvalidArgumentError, bad);
  });

  it("refuses short and common passwords and accepts a long unusual one", () => {
    assert.throws(() => checkPasswordPolicy("short-one", 12), /at least 12/);
    assert.throws(() => checkPasswordPolicy("Password123456", 12), /too common/);
    assert.throws(() => checkPasswordPolicy("x".repeat(300), 12), /at most/);
    assert.doesNotThrow(() => checkPasswordPolicy("violet-umbrella-staircase", 12));
  });

  it("accepts only known roles", () => {
    assert.deepEqual(parseRoles(["publisher", "publisher"]), ["publisher"]);
    assert.throws(() => parseRoles(["root"]), /unknown role/);
    assert.throws(() => parseRoles([]), /must not be empty/);
  });
});

describe("the failure throttle", () => {
  it("locks a key after the limit within the window and frees it when the window passes", async () => {
    let now = 0;
    const throttle = new FailureThrottle({ log: new MemoryFailureLog(), scope: "account", limit: 3, windowMs: 60_000, now: () => now });
    for (let i = 0; i < 3; i++) {
      assert.equal(await throttle.retryAfterSeconds("a"), 0);
      await throttle.recordFailure("a");
      now += 1_000;
    }
    assert.equal(await throttle.retryAfterSeconds("a"), 57);
    assert.equal(await throttle.retryAfterSeconds("b"), 0, "other keys are unaffected");
    now = 61_000;
    assert.equal(await throttle.retryAfterSeconds("a"), 0);
  });

  it("reports the failures inside the window with the wait, so a caller can skip a reset with nothing to clear", async () => {
    let now = 0;
    const throttle = new FailureThrottle({ log: new MemoryFailureLog(), scope: "account", limit: 2, windowMs: 60_000, now: () => now });
    assert.deepEqual(await throttle.check("a"), { failures: 0, retryAfterSeconds: 0 });
    await throttle.recordFailure("a");
    assert.deepEqual(await throttle.check("a"), { failures: 1, retryAfterSeconds: 0 });
    now = 10_000;
    await throttle.recordFailure("a");
    assert.deepEqual(await throttle.check("a"), { failures: 2, retryAfterSeconds: 50 });
    now = 65_000;
    assert.deepEqual(await throttle.check("a"), { failures: 1, retryAfterSeconds: 0 }, "the first failure left the window");
  });

  it("forgets failures on reset", async () => {
    const throttle = new FailureThrottle({ log: new MemoryFailureLog(), scope: "account", limit: 1, windowMs: 60_000 });
    await throttle.recordFailure("a");
    assert.ok((await throttle.retryAfterSeconds("a")) > 0);
    await throttle.reset("a");
    assert.equal(await throttle.retryAfterSeconds("a"), 0);
  });

  it("keeps the keys of two throttles sharing one log apart", async () => {
    const log = new MemoryFailureLog();
    const accounts = new FailureThrottle({ log, scope: "account", limit: 1, windowMs: 60_000 });
    const addresses = new FailureThrottle({ log, scope: "address", limit: 1, windowMs: 60_000 });
    await accounts.recordFailure("x");
    assert.equal(await addresses.retryAfterSeconds("x"), 0);
  });
});

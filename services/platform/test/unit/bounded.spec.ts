import assert from "node:assert/strict";
import { Bounded } from "../../src/bounded.ts";

/** A task that runs until the test releases it. */
function gate<T>(value: T): { task: () => Promise<T>; started: Promise<void>; release: () => void } {
  let release!: () => void;
  let markStarted!: () => void;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  const done = new Promise<void>((resolve) => (release = resolve));
  return {
    task: async () => {
      markStarted();
      await done;
      return value;
    },
    started,
    release,
  };
}

describe("Bounded (a cap on tasks in flight, e.g. identity's argon2id hashes)", () => {
  it("runs at most `limit` tasks at once and starts the waiting ones in order as slots free", async () => {
    const bounded = new Bounded(2);
    const gates = [gate("a"), gate("b"), gate("c"), gate("d")];
    const order: string[] = [];
    const results = gates.map((g, i) => bounded.run(async () => (order.push("abcd"[i]!), g.task())));
    await Promise.all([gates[0]!.started, gates[1]!.started]);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(bounded.load, { running: 2, waiting: 2 });
    assert.deepEqual(order, ["a", "b"]);
    gates[1]!.release();
    await gates[2]!.started;
    assert.deepEqual(order, ["a", "b", "c"]);
    assert.deepEqual(bounded.load, { running: 2, waiting: 1 });
    gates[0]!.release();
    gates[2]!.release();
    gates[3]!.release();
    assert.deepEqual(await Promise.all(results), ["a", "b", "c", "d"]);
    assert.deepEqual(bounded.load, { running: 0, waiting: 0 });
  });

  it("frees the slot of a task that fails, and passes the failure to its caller", async () => {
    const bounded = new Bounded(1);
    await assert.rejects(bounded.run(() => Promise.reject(new Error("wrong password"))), /wrong password/);
    assert.equal(await bounded.run(async () => "next"), "next");
    assert.deepEqual(bounded.load, { running: 0, waiting: 0 });
  });

  it("refuses a limit that is not a positive integer", () => {
    for (const limit of [0, -1, 1.5, Number.NaN]) assert.throws(() => new Bounded(limit), RangeError);
  });
});

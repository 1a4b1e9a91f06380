import assert from "node:assert/strict";
import v8 from "node:v8";
import { collectReducingMemory } from "../../src/heap.ts";

const newSpaceBytes = () => v8.getHeapSpaceStatistics().find((space) => space.space_name === "new_space")!.space_size;

describe("collectReducingMemory (the heap start-up grew, given back)", () => {
  it("shrinks a young generation that a burst of surviving allocations grew, and leaves no gc() behind", () => {
    // What start-up does: many objects that survive their first scavenges, so V8 grows the
    // semi-spaces towards their maximum.
    let survivors: unknown[][] = [];
    for (let round = 0; round < 200; round++) survivors.push(Array.from({ length: 5_000 }, (_, i) => ({ round, i })));
    const grown = newSpaceBytes();
    survivors = [];
    collectReducingMemory();
    const shrunk = newSpaceBytes();
    assert.ok(grown >= 4 * 1024 * 1024, `the burst grew the young generation (${grown} bytes)`);
    assert.ok(shrunk <= grown / 2, `young generation ${grown} -> ${shrunk} bytes`);
    assert.equal(survivors.length, 0);
    // The collector was reached through one throwaway context, not the process's global.
    assert.equal((globalThis as { gc?: unknown }).gc, undefined);
  });
});

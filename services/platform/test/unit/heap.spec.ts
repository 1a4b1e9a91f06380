import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { collectReducingMemory } from "../../src/heap.ts";

const heapModule = fileURLToPath(new URL("../../src/heap.ts", import.meta.url));

describe("collectReducingMemory (the heap start-up grew, given back)", () => {
  it("shrinks a young generation that a burst of surviving allocations grew, in a process started with --expose-gc", () => {
    // What start-up does: many objects that survive their first scavenges, so V8 grows the
    // semi-spaces towards their maximum. Run in a process of its own, started as services are.
    const script = `
      import v8 from "node:v8";
      const { collectReducingMemory } = await import(${JSON.stringify(heapModule)});
      const newSpace = () => v8.getHeapSpaceStatistics().find((space) => space.space_name === "new_space").space_size;
      let survivors = [];
      for (let round = 0; round < 200; round++) survivors.push(Array.from({ length: 5_000 }, (_, i) => ({ round, i })));
      const grown = newSpace();
      survivors = [];
      const collected = collectReducingMemory();
      console.log(JSON.stringify({ grown, shrunk: newSpace(), collected }));
    `;
    const output = execFileSync(process.execPath, ["--expose-gc", "--max-semi-space-size=8", "--input-type=module", "-e", script], { encoding: "utf8" });
    const { grown, shrunk, collected } = JSON.parse(output) as { grown: number; shrunk: number; collected: boolean };
    assert.equal(collected, true);
    assert.ok(grown >= 4 * 1024 * 1024, `the burst grew the young generation (${grown} bytes)`);
    assert.ok(shrunk <= grown / 2, `young generation ${grown} -> ${shrunk} bytes`);
  });

  it("does nothing without --expose-gc, and never turns V8 flags on at run time", () => {
    assert.equal((globalThis as { gc?: unknown }).gc, undefined, "mocha runs without --expose-gc");
    assert.equal(collectReducingMemory(), false);
    assert.equal((globalThis as { gc?: unknown }).gc, undefined);
  });
});

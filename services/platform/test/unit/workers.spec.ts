import assert from "node:assert/strict";
import { createLogger } from "../../src/logger.ts";
import { periodicWorker, Workers, type Worker } from "../../src/workers.ts";

describe("workers", () => {
  const log = createLogger({ service: "workers-test", level: "silent", format: "json" });
  const events: string[] = [];
  const worker = (name: string, options: { failStart?: boolean } = {}): Worker => ({
    name,
    async start() {
      if (options.failStart) throw new Error(`${name} cannot start`);
      events.push(`start ${name}`);
    },
    async stop() {
      events.push(`stop ${name}`);
    },
  });
  beforeEach(() => (events.length = 0));

  it("starts in order and stops in reverse order", async () => {
    const workers = new Workers([worker("a"), worker("b"), worker("c")], log);
    await workers.start();
    await workers.stop();
    assert.deepEqual(events, ["start a", "start b", "start c", "stop c", "stop b", "stop a"]);
    assert.equal(workers.isHealthy(), true);
  });

  it("reports unhealthy when a worker fails to start, keeps the others, and does not stop the one that never started", async () => {
    const workers = new Workers([worker("a"), worker("broken", { failStart: true }), worker("c")], log);
    await workers.start();
    assert.equal(workers.isHealthy(), false);
    await workers.stop();
    assert.deepEqual(events, ["start a", "start c", "stop c", "stop a"]);
  });

  it("runs a periodic worker's work, marks it unhealthy while the work fails, and waits for a run in flight on stop", async () => {
    let runs = 0;
    let failing = true;
    let finished = 0;
    const sweep = periodicWorker({
      name: "sweep",
      intervalMs: 5,
      log,
      work: async () => {
        runs++;
        await new Promise((resolve) => setTimeout(resolve, 10));
        finished++;
        if (failing) throw new Error("database is locked");
      },
    });
    await sweep.start();
    while (runs < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(sweep.isHealthy?.(), false, "a failing run is not swallowed");
    failing = false;
    const before = runs;
    while (runs < before + 2) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(sweep.isHealthy?.(), true, "healthy again after a run succeeds");
    await sweep.stop();
    assert.equal(finished, runs, "stop waited for the run in flight");
    const stoppedAt = runs;
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(runs, stoppedAt, "no run after stop");
  });
});

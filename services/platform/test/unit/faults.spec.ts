import assert from "node:assert/strict";
import { FaultInjectedError, parseFaults } from "../../src/faults.ts";
import { baseConfigSchema, loadConfig } from "../../src/config.ts";

describe("MESHWORK_FAULTS", () => {
  it("is empty by default: no fault is on", () => {
    const faults = parseFaults(undefined);
    assert.equal(faults.has("crash-before-publish"), false);
    assert.doesNotThrow(() => faults.failIf("reject-event", "any-id", "never"));
  });

  it("parses names, arguments and repeats", () => {
    const faults = parseFaults("crash-before-publish, reject-event=e1,reject-event=e2 ,delay-call=a.B/C:250");
    assert.equal(faults.has("crash-before-publish"), true);
    assert.deepEqual(faults.argumentsOf("reject-event"), ["e1", "e2"]);
    assert.throws(() => faults.failIf("reject-event", "e2", "refusing e2"), FaultInjectedError);
    assert.doesNotThrow(() => faults.failIf("reject-event", "e3", "refusing e3"));
  });

  it("delays only the named call, by the given time", async () => {
    const faults = parseFaults("delay-call=a.B/C:120");
    const timed = async (target: string) => {
      const started = performance.now();
      await faults.delayFor(target);
      return performance.now() - started;
    };
    assert.ok((await timed("a.B/C")) >= 100);
    assert.ok((await timed("a.B/D")) < 100);
  });

  it("rejects an unknown fault or a missing argument, and config loading names the problem", () => {
    assert.throws(() => parseFaults("crash-everything"), /unknown fault "crash-everything"/);
    assert.throws(() => parseFaults("reject-event"), /needs an argument/);
    assert.throws(() => parseFaults("delay-call=a.B/C"), /Service\/Method:milliseconds/);
    assert.throws(() => loadConfig(baseConfigSchema, { RPC_PORT: "1", ADMIN_PORT: "2", MESHWORK_FAULTS: "nope" }), /MESHWORK_FAULTS: unknown fault "nope"/);
  });
});

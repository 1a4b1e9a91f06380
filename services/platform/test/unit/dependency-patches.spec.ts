import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { cleanAttributes, isAnyValue } from "@opentelemetry/core";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { applyPatches, PATCHES, unapplied } from "../../../../scripts/patch-dependencies.ts";

const nodeModules = path.resolve(import.meta.dirname, "../../../../node_modules");

describe("dependency patches (scripts/patch-dependencies.ts)", () => {
  it("are applied to the installed packages (npm install runs them as postinstall)", () => {
    assert.deepEqual(unapplied(nodeModules), []);
  });

  it("still target the installed versions: a version bump fails until someone checks whether upstream fixed it", () => {
    for (const patch of PATCHES) {
      const installed = JSON.parse(fs.readFileSync(path.join(nodeModules, patch.package, "package.json"), "utf8")).version;
      assert.equal(installed, patch.version, `${patch.package}: review the patch for ${installed}`);
    }
  });

  it("sdk-metrics hashes a frozen attribute set once, however often it is recorded, and any other object every time", async () => {
    class Reader extends MetricReader {
      protected async onForceFlush(): Promise<void> {}
      protected async onShutdown(): Promise<void> {}
    }
    const reader = new Reader();
    const provider = new MeterProvider({ readers: [reader] });
    const histogram = provider.getMeter("patch-test").createHistogram("test.duration");
    /** An attribute set that counts how often its value is read (hashing reads every value). */
    const counted = () => {
      const reads = { count: 0 };
      const attributes = {
        get "rpc.method"() {
          reads.count++;
          return "GetOnlineCount";
        },
      };
      return { attributes, reads };
    };
    const frozen = counted();
    Object.freeze(frozen.attributes);
    histogram.record(1, frozen.attributes);
    const afterFirst = frozen.reads.count;
    for (let call = 0; call < 5; call++) histogram.record(1, frozen.attributes);
    assert.equal(frozen.reads.count, afterFirst, "no more reads after the first record");
    const plain = counted();
    for (let call = 0; call < 3; call++) histogram.record(1, plain.attributes);
    assert.ok(plain.reads.count >= 3, "an object that may change is hashed on every record");
    const { resourceMetrics } = await reader.collect();
    const points = resourceMetrics.scopeMetrics[0]!.metrics[0]!.dataPoints;
    assert.equal(points.length, 1, "both sets are the same series");
    assert.equal((points[0]!.value as { count: number }).count, 9);
    await provider.shutdown();
  });

  it("core checks a string, number or boolean attribute value without allocating, and any other value as before", () => {
    const original = globalThis.WeakSet;
    let made = 0;
    globalThis.WeakSet = class extends original<object> {
      constructor() {
        super();
        made++;
      }
    } as WeakSetConstructor;
    try {
      const { attributes, droppedAttributesCount } = cleanAttributes({ "rpc.method": "GetOnlineCount", "rpc.grpc.status_code": 0, "db.ok": true }, { attributeCountLimit: 128, attributeValueLengthLimit: Infinity });
      assert.deepEqual(attributes, { "rpc.method": "GetOnlineCount", "rpc.grpc.status_code": 0, "db.ok": true });
      assert.equal(droppedAttributesCount, 0);
      assert.equal(made, 0, "no WeakSet for primitive values");
      assert.equal(isAnyValue(["a", 1]), true);
      assert.ok(made > 0, "nested values are still walked with a WeakSet");
      const cyclic: Record<string, unknown> = {};
      cyclic["self"] = cyclic;
      assert.equal(isAnyValue(cyclic), false);
      assert.equal(isAnyValue(() => undefined), false);
      assert.equal(isAnyValue(10n), false);
    } finally {
      globalThis.WeakSet = original;
    }
  });

  it("refuse to apply when the text they replace is gone (upstream changed it)", () => {
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "meshwork-patch-"));
    try {
      const patch = PATCHES[0]!;
      const root = path.join(scratch, patch.package);
      fs.mkdirSync(path.join(root, "dist/esm"), { recursive: true });
      fs.mkdirSync(path.join(root, "dist/cjs"), { recursive: true });
      fs.writeFileSync(path.join(root, "package.json"), JSON.stringify({ version: patch.version }));
      for (const file of patch.files) fs.writeFileSync(path.join(root, file), "abortController.abort(new Error('upstream now passes a reason'));\n");
      assert.throws(() => applyPatches(scratch), /upstream changed, review the patch/);
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });
});

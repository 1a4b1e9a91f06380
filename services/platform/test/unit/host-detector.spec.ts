import assert from "node:assert/strict";
import { detectResources, hostDetector as upstreamHostDetector } from "@opentelemetry/resources";
import { hostDetector } from "../../src/host-detector.ts";

describe("hostDetector", () => {
  it("reports the host as @opentelemetry/resources' own host detector does on Linux", async function () {
    if (process.platform !== "linux") this.skip();
    const ours = detectResources({ detectors: [hostDetector] });
    const upstream = detectResources({ detectors: [upstreamHostDetector] });
    await Promise.all([ours.waitForAsyncAttributes?.(), upstream.waitForAsyncAttributes?.()]);
    assert.deepEqual(ours.attributes, upstream.attributes);
    assert.ok(ours.attributes["host.name"], "host.name is set");
    assert.ok(ours.attributes["host.arch"], "host.arch is set");
  });
});

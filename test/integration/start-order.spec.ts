import assert from "node:assert/strict";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "@meshwork/proto/grpc/health/v1/health_pb.js";
import { PresenceService } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import { waitFor } from "../../scripts/lib/system.ts";
import { adminToken, TestSystem } from "../support/harness.ts";

// In a cluster pods start in any order. A consumer that comes up before the producer of its stream
// must still become ready (or its startup probe restarts it forever), and must then consume.
describe("start order", function () {
  this.timeout(120_000);
  const system = new TestSystem({ services: ["presence", "audit"] });

  before(() => system.start());
  after(() => system.stop());

  it("presence and audit become ready before identity has created the IDENTITY stream", async () => {
    const streams = await (await system.jsm()).streams.names().next();
    assert.ok(!streams.includes("IDENTITY"), `no producer started, yet streams exist: ${streams.join(", ")}`);
    for (const name of ["presence", "audit"] as const) {
      const response = await fetch(`${system.adminUrl(name)}/readyz`);
      assert.equal(response.status, 200, `${name} /readyz: ${await response.text()}`);
      const health = await system.client(Health, name, "grpc").check({ service: "" });
      assert.equal(health.status, ServingStatus.SERVING, `${name} health`);
    }
  });

  it("presence consumes identity's events once identity starts later", async () => {
    await system.startService("identity");
    const token = await adminToken(system);
    const presence = system.client(PresenceService, "presence", "connect", token);
    await waitFor(async () => Number((await presence.getOnlineCount({})).count) >= 1, "the admin's sign-in counted by presence", 30_000);
    const consumers = await (await system.jsm()).consumers.info("IDENTITY", "presence-projection");
    assert.equal(consumers.num_pending, 0);
  });
});

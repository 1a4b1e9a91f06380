import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { Health } from "@meshwork/proto/grpc/health/v1/health_pb.js";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { TestSystem } from "../support/harness.ts";

describe("graceful shutdown", function () {
  this.timeout(60_000);
  // Deliberately slow hashing (256 MiB, 4 passes): a sign-in is in flight long enough to SIGTERM it.
  const system = new TestSystem({ services: ["identity"], env: { identity: { ARGON2_MEMORY_KIB: "262144", ARGON2_ITERATIONS: "4" } } });
  before(() => system.start());
  after(() => system.stop());

  it("finishes in-flight calls, refuses new connections, and exits 0 on SIGTERM", async () => {
    const identity = system.client(IdentityService, "identity", "grpc");
    const jsm = await system.jsm();
    await identity.signUp({ email: "slow@example.com", password: "slow-hash-passphrase", displayName: "Slow" });
    const inFlight = identity.signIn({ email: "slow@example.com", password: "slow-hash-passphrase" });
    await sleep(50);
    const process = system.processes.get("identity")!;
    process.child.kill("SIGTERM");
    const answer = await inFlight;
    assert.ok(answer.accessToken, "the call in flight completed");
    assert.equal(await process.exited, 0);
    assert.match(process.output(), /shutting down/);
    assert.match(process.output(), /"msg":"stopped"/);
    await assert.rejects(system.client(Health, "identity", "connect").check({}), "no longer accepting");
    const published = await jsm.streams.getMessage("IDENTITY", { last_by_subj: "identity.v1.user.signed_in" });
    assert.ok(published, "the sign-in's event was published before the process exited");
    system.processes.delete("identity");
  });
});

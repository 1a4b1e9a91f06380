import assert from "node:assert/strict";
import { PresenceService } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import { AuditService } from "@meshwork/proto/meshwork/audit/v1/audit_pb.js";
import { waitFor } from "../../scripts/lib/system.ts";
import { adminToken, TestSystem } from "../support/harness.ts";
import { postgresAvailable, ThrowawayPostgres } from "../support/postgres.ts";

describe("PostgreSQL, one database per service", function () {
  this.timeout(120_000);
  const postgres = new ThrowawayPostgres();
  let system: TestSystem;

  before(async function () {
    if (!postgresAvailable()) this.skip();
    await postgres.start(["identity", "presence", "audit"]);
    system = new TestSystem({
      env: {
        identity: { DATABASE_URL: postgres.url("identity") },
        presence: { DATABASE_URL: postgres.url("presence") },
        audit: { DATABASE_URL: postgres.url("audit") },
      },
    });
    await system.start();
  });
  after(async () => {
    await system?.stop();
    await postgres.stop();
  });

  it("runs the sign-in flow with each service on its own PostgreSQL database", async () => {
    const token = await adminToken(system);
    await system.signIn("pg-user@example.com", "postgres-passphrase-1");
    await waitFor(async () => Number((await system.client(PresenceService, "presence", "connect", token).getOnlineCount({})).count) === 2, "both users online", 5_000);
    const audit = await system.client(AuditService, "audit", "connect", token).listEvents({ subjectPrefix: "identity.v1.user.signed_in" });
    assert.equal(audit.events.length, 2);
    assert.match(await postgres.query("select count(*)::int as n from users", "identity", "identity"), /"n":2/);
    assert.match(await postgres.query("select count(*)::int as n from outbox where published_at is not null", "identity", "identity"), /"n":4/);
  });

  it("keeps each service out of the others' databases", async () => {
    await assert.rejects(postgres.query("select count(*) from users", "identity", "presence"), /permission denied|not allowed/);
  });
});

import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import * as v1 from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import * as v2 from "@meshwork/proto/meshwork/presence/v2/presence_pb.js";
import { waitFor } from "../../scripts/lib/system.ts";
import { adminToken, PROTOCOLS, TestSystem } from "../support/harness.ts";

describe("API versions side by side", function () {
  this.timeout(60_000);
  const system = new TestSystem({ services: ["identity", "presence"], env: { presence: { PRESENCE_V1_SUNSET: "2027-06-30T00:00:00Z" } } });
  let token = "";
  before(async () => {
    await system.start();
    token = await adminToken(system);
    for (let index = 0; index < 5; index++) await system.signIn(`versions-${index}@example.com`, `versions-passphrase-${index}`);
    await waitFor(async () => Number((await system.client(v1.PresenceService, "presence", "connect", token).getOnlineCount({})).count) === 6, "six users online");
  });
  after(() => system.stop());

  it("serves meshwork.presence.v1 and v2 from the same process with the same answers", async () => {
    for (const protocol of PROTOCOLS) {
      const old = await system.client(v1.PresenceService, "presence", protocol, token).getOnlineCount({});
      const summary = await system.client(v2.PresenceService, "presence", protocol, token).getPresenceSummary({});
      assert.equal(summary.onlineUsers, old.count);
      assert.equal(summary.onlineSessions, 6n);
    }
  });

  it("marks v1 answers deprecated with its sunset date and successor, and leaves v2 unmarked", async () => {
    for (const protocol of PROTOCOLS) {
      const headers: Record<string, Headers> = {};
      await system.client(v1.PresenceService, "presence", protocol, token).getOnlineCount({}, { onHeader: (header) => (headers["v1"] = header) });
      await system.client(v2.PresenceService, "presence", protocol, token).getPresenceSummary({}, { onHeader: (header) => (headers["v2"] = header) });
      assert.equal(headers["v1"]!.get("sunset"), "Wed, 30 Jun 2027 00:00:00 GMT", protocol);
      assert.match(headers["v1"]!.get("deprecation") ?? "", /^@\d+$/);
      assert.equal(headers["v1"]!.get("link"), '</meshwork.presence.v2.PresenceService>; rel="successor-version"');
      assert.equal(headers["v2"]!.get("sunset"), null);
    }
    const metrics = await (await fetch(`${system.adminUrl("presence")}/metrics`)).text();
    assert.match(metrics, /meshwork_rpc_deprecated_calls_total\{[^}]*rpc_service="meshwork\.presence\.v1\.PresenceService"[^}]*\} [1-9]/);
  });

  it("pages v2 ListOnlineUsers without skipping or repeating anyone", async () => {
    const client = system.client(v2.PresenceService, "presence", "grpc", token);
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await client.listOnlineUsers({ pageSize: 4, pageToken });
      seen.push(...page.users.map((user) => user.userId));
      pageToken = page.nextPageToken;
    } while (pageToken);
    const all = (await system.client(v1.PresenceService, "presence", "connect", token).listOnlineUsers({})).users.map((user) => user.userId);
    assert.deepEqual(seen, all);
    await assert.rejects(client.listOnlineUsers({ pageToken: "garbage" }), (error: ConnectError) => error.code === Code.InvalidArgument);
  });
});

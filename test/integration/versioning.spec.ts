import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import * as v1 from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import * as v2 from "@meshwork/proto/meshwork/presence/v2/presence_pb.js";
import { ROOT, waitFor } from "../../scripts/lib/system.ts";
import { adminToken, PROTOCOLS, TestSystem } from "../support/harness.ts";

describe("API versions side by side", function () {
  this.timeout(60_000);
  // The deprecation window's clock is set before presence v1's sunset (2027-02-24, proto/deprecations.ts).
  const system = new TestSystem({ services: ["identity", "presence"], env: { presence: { MESHWORK_TEST_DEPRECATION_CLOCK: "2027-02-01T00:00:00Z" } } });
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

  it("marks v1 answers deprecated with its sunset date and successor, counts them by caller, and leaves v2 unmarked", async () => {
    for (const protocol of PROTOCOLS) {
      const headers: Record<string, Headers> = {};
      await system.client(v1.PresenceService, "presence", protocol, token).getOnlineCount({}, { onHeader: (header) => (headers["v1"] = header) });
      await system.client(v2.PresenceService, "presence", protocol, token).getPresenceSummary({}, { onHeader: (header) => (headers["v2"] = header) });
      assert.equal(headers["v1"]!.get("sunset"), "Wed, 24 Feb 2027 00:00:00 GMT", protocol);
      assert.equal(headers["v1"]!.get("deprecation"), `@${Date.parse("2026-11-26T00:00:00Z") / 1000}`);
      assert.equal(headers["v1"]!.get("link"), '</meshwork.presence.v2.PresenceService>; rel="successor-version"');
      assert.equal(headers["v2"]!.get("sunset"), null);
    }
    const metrics = await (await fetch(`${system.adminUrl("presence")}/metrics`)).text();
    const adminId = (JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { sub: string }).sub;
    const calls = metrics.split("\n").filter((line) => line.startsWith("meshwork_rpc_deprecated_calls_total{") && line.includes('rpc_service="meshwork.presence.v1.PresenceService"'));
    assert.ok(calls.some((line) => line.includes(`meshwork_caller="user:${adminId}"`) && /\} [1-9]/.test(line)), `calls counted by the admin's principal:\n${calls.join("\n")}`);
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

describe("the enforced deprecation window", function () {
  this.timeout(90_000);
  const run = promisify(execFile);
  // presence's deprecation clock starts after presence v1's sunset (2027-02-24).
  const system = new TestSystem({ services: ["identity", "presence"], env: { presence: { MESHWORK_TEST_DEPRECATION_CLOCK: "2027-03-01T00:00:00Z" } } });
  let token = "";
  before(async () => {
    await system.start();
    token = await adminToken(system);
  });
  after(() => system.stop());

  it("refuses presence v1 after its sunset and names v2, over every protocol, while v2 answers", async () => {
    for (const protocol of PROTOCOLS) {
      await assert.rejects(system.client(v1.PresenceService, "presence", protocol, token).getOnlineCount({}), (error: ConnectError) => {
        assert.equal(error.code, Code.FailedPrecondition, protocol);
        assert.match(error.rawMessage, /retired on 2027-02-24; use meshwork\.presence\.v2\.PresenceService/);
        return true;
      });
      const summary = await system.client(v2.PresenceService, "presence", protocol, token).getPresenceSummary({});
      assert.ok(summary.onlineUsers >= 1n);
    }
  });

  it("serves presence v1 again when DEPRECATION_EXTENSIONS extends its window during an incident", async () => {
    await system.restartService("presence", { DEPRECATION_EXTENSIONS: "meshwork.presence.v1.PresenceService=2027-03-15" });
    const headers: Headers[] = [];
    await system.client(v1.PresenceService, "presence", "grpc", token).getOnlineCount({}, { onHeader: (header) => headers.push(header) });
    assert.equal(headers[0]!.get("sunset"), "Mon, 15 Mar 2027 00:00:00 GMT");
  });

  it("refuses to start with an extension that would shorten the window", async () => {
    await system.stopService("presence");
    await assert.rejects(system.startService("presence", { DEPRECATION_EXTENSIONS: "meshwork.presence.v1.PresenceService=2027-01-01" }), /an extension must be later/);
  });

  it("fails make api-check once presence v1 is more than 14 days past its sunset and still in the build", async () => {
    const check = (today: string) => run(process.execPath, ["scripts/api-check.ts", "--today", today], { cwd: ROOT });
    await check("2027-03-10");
    await assert.rejects(check("2027-03-11"), (error: Error & { stderr: string }) => {
      assert.match(error.stderr, /meshwork\.presence\.v1\.PresenceService sunset on 2027-02-24, 15 days ago .* still in the build/);
      return true;
    });
  });
});

import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { DeadLetterService } from "@meshwork/proto/meshwork/audit/v1/audit_pb.js";
import { PresenceService } from "@meshwork/proto/meshwork/presence/v2/presence_pb.js";
import { waitFor } from "../../scripts/lib/system.ts";
import { publishUserEvent, signedIn } from "../support/events.ts";
import { adminToken, TestSystem } from "../support/harness.ts";

/** The two APIs the console is built on: the live online count and dead letters over RPC. */
describe("live count and dead letters over RPC", function () {
  this.timeout(120_000);
  const system = new TestSystem({ env: { presence: { WATCH_HEARTBEAT_SECONDS: "1", WATCH_POLL_MS: "100", MESHWORK_FAULT_POISON_USER_ID: "poison-user" } } });
  let admin = "";
  let member = "";

  before(async () => {
    await system.start();
    admin = await adminToken(system);
    member = await system.signIn("watcher@example.com", "a-watcher-passphrase");
  });
  after(() => system.stop());

  it("streams the count at once, again when someone signs in, and a heartbeat with a fresh as_of when nothing changes", async () => {
    const presence = system.client(PresenceService, "presence", "connect", member);
    const controller = new AbortController();
    const stream = presence.watchOnlineCount({}, { signal: controller.signal })[Symbol.asyncIterator]();
    const first = (await stream.next()).value!;
    assert.equal(first.heartbeatSeconds, 1);
    assert.ok(Math.abs(Date.now() - timestampMs(first.asOf!)) < 2_000, "as_of is now");

    const heartbeat = (await stream.next()).value!;
    assert.equal(heartbeat.onlineUsers, first.onlineUsers, "nothing changed");
    assert.ok(timestampMs(heartbeat.asOf!) > timestampMs(first.asOf!), "but the projection was read again");

    await system.signIn("newcomer@example.com", "a-newcomer-passphrase");
    let latest = heartbeat;
    while (latest.onlineUsers === first.onlineUsers) latest = (await stream.next()).value!;
    assert.equal(latest.onlineUsers, first.onlineUsers + 1n);
    controller.abort();
  });

  it("refuses the stream without a token", async () => {
    const presence = system.client(PresenceService, "presence", "connect");
    await assert.rejects(
      (async () => {
        for await (const _ of presence.watchOnlineCount({})) break;
      })(),
      (error: unknown) => ConnectError.from(error).code === Code.Unauthenticated,
    );
  });

  it("lists a dead letter to admins only, and replays it by its sequence", async () => {
    const connection = await system.natsConnection();
    const poisonId = await publishUserEvent(connection, signedIn("poison-user", "poison-session"));
    const deadLetters = system.client(DeadLetterService, "audit", "connect", admin);
    await waitFor(async () => (await deadLetters.listDeadLetters({ consumer: "presence-projection" })).deadLetters.length === 1, "the dead letter", 20_000, 200);
    const [letter] = (await deadLetters.listDeadLetters({})).deadLetters;
    assert.equal(letter!.eventId, poisonId);
    assert.equal(letter!.originalSubject, "identity.v1.user.signed_in");
    assert.match(letter!.error, /poison-user/);

    const asMember = system.client(DeadLetterService, "audit", "connect", member);
    await assert.rejects(asMember.listDeadLetters({}), (error: unknown) => ConnectError.from(error).code === Code.PermissionDenied);
    await assert.rejects(deadLetters.replayDeadLetter({ sequence: 999_999n }), (error: unknown) => ConnectError.from(error).code === Code.NotFound);

    const replayed = await deadLetters.replayDeadLetter({ sequence: letter!.sequence });
    assert.equal(replayed.deadLetter!.eventId, poisonId);
    assert.equal((await deadLetters.listDeadLetters({})).deadLetters.some((left) => left.sequence === letter!.sequence), false, "gone from DEADLETTER");
    const jsm = await system.jsm();
    const last = await jsm.streams.getMessage("IDENTITY", { last_by_subj: "identity.v1.user.signed_in" });
    assert.equal(last?.header.get("ce-id"), poisonId, "back on its original subject with its event id");
  });

  it("ends open watch streams at shutdown instead of holding it for the grace period", async () => {
    const presence = system.client(PresenceService, "presence", "connect", member);
    const stream = presence.watchOnlineCount({})[Symbol.asyncIterator]();
    await stream.next();
    const started = performance.now();
    await system.stopService("presence");
    const stoppedMs = performance.now() - started;
    assert.ok(stoppedMs < 5_000, `stopped in ${Math.round(stoppedMs)} ms`);
  });
});

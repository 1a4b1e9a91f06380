import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { fromBinary } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import SQLite from "better-sqlite3";
import { listDeadLetters, traceIdOf, uuidv7 } from "@meshwork/platform";
import { AuditService } from "@meshwork/proto/meshwork/audit/v1/audit_pb.js";
import { UserEventSchema } from "@meshwork/proto/meshwork/identity/v1/events_pb.js";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { PresenceAdminService, PresenceService } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import { ROOT, waitFor } from "../../scripts/lib/system.ts";
import { publishUserEvent, signedIn, signedOut } from "../support/events.ts";
import { adminToken, TestSystem } from "../support/harness.ts";

const run = promisify(execFile);

describe("the event backbone under faults", function () {
  this.timeout(180_000);
  const system = new TestSystem();
  let token = "";

  before(async () => {
    await system.start();
    token = await adminToken(system);
  });
  after(() => system.stop());

  const presence = () => system.client(PresenceService, "presence", "connect", token);
  const onlineCount = async () => Number((await presence().getOnlineCount({})).count);
  const subjectCount = async (subject: string) => {
    const info = await (await system.jsm()).streams.info("IDENTITY", { subjects_filter: subject });
    return info.state.subjects?.[subject] ?? 0;
  };
  const caughtUp = (consumer: string, stream = "IDENTITY") =>
    waitFor(
      async () => {
        const info = await (await system.jsm()).consumers.info(stream, consumer);
        return info.num_pending === 0 && info.num_ack_pending === 0;
      },
      `${consumer} to catch up`,
      30_000,
      100,
    );
  const projectionRows = () => {
    const db = new SQLite(path.join(system.dataDir, "presence.db"), { readonly: true });
    try {
      return db.prepare("select session_id, user_id, email, display_name, expires_at from online_sessions order by session_id").all();
    } finally {
      db.close();
    }
  };

  it("loses and doubles nothing when NATS is down during 100 sign-ins", async () => {
    const identity = system.client(IdentityService, "identity");
    const users = Array.from({ length: 100 }, (_, index) => ({ email: `outage-${index}@example.com`, password: `outage-passphrase-${index}` }));
    for (const user of users) await identity.signUp({ ...user, displayName: user.email });
    await caughtUp("presence-projection");
    const signedInBefore = await subjectCount("identity.v1.user.signed_in");
    const countBefore = await onlineCount();

    await system.stopNats();
    const results = await Promise.allSettled(users.map((user) => identity.signIn(user)));
    assert.equal(results.filter((result) => result.status === "fulfilled").length, 100, "every sign-in succeeds while NATS is down");
    await system.startNats();

    await waitFor(async () => (await subjectCount("identity.v1.user.signed_in").catch(() => 0)) >= signedInBefore + 100, "100 SignedIn in the stream", 30_000, 200);
    await caughtUp("presence-projection");
    await caughtUp("audit-identity");
    assert.equal(await subjectCount("identity.v1.user.signed_in"), signedInBefore + 100, "exactly 100 reach the stream");
    assert.equal(await onlineCount(), countBefore + 100, "presence counts each exactly once");
    const audit = system.client(AuditService, "audit", "connect", token);
    let audited = 0;
    let pageToken = "";
    do {
      const page = await audit.listEvents({ subjectPrefix: "identity.v1.user.signed_in", pageSize: 500, pageToken });
      audited += page.events.filter((event) => JSON.parse(event.payloadJson).signedIn.email.startsWith("outage-")).length;
      pageToken = page.nextPageToken;
    } while (pageToken);
    assert.equal(audited, 100, "audit keeps each exactly once");
  });

  it("publishes exactly once after identity is killed between the commit and the publish", async () => {
    const identity = system.client(IdentityService, "identity");
    const { user } = await identity.signUp({ email: "crash@example.com", password: "crash-test-passphrase", displayName: "Crash" });
    await waitFor(async () => (await system.client(AuditService, "audit", "connect", token).listEvents({ userId: user!.id })).events.length === 1, "sign-up relayed");
    const before = await subjectCount("identity.v1.user.signed_in");
    await system.stopService("identity");
    const crashing = await system.startService("identity", { MESHWORK_FAULTS: "crash-before-publish" });
    try {
      await system.client(IdentityService, "identity").signIn({ email: "crash@example.com", password: "crash-test-passphrase" }).catch(() => undefined);
      const exitCode = await crashing.exited;
      assert.equal(exitCode, -1, "killed by the fault hook");
      assert.match(crashing.output(), /fault crash-before-publish: killing the process after the commit of event \S+, before publishing it/);
      assert.equal(await subjectCount("identity.v1.user.signed_in"), before, "nothing published before the crash");
    } finally {
      await system.stopService("identity", "SIGKILL");
      await system.startService("identity");
    }
    await waitFor(async () => (await subjectCount("identity.v1.user.signed_in")) === before + 1, "the event after restart", 10_000);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal(await subjectCount("identity.v1.user.signed_in"), before + 1, "published exactly once");
  });

  it("rebuilds the same projection after presence is killed in the middle of 1,000 events", async () => {
    const connection = await system.natsConnection();
    const published: Promise<string>[] = [];
    for (let index = 0; index < 1_000; index++) {
      const user = `bulk-${index % 250}`;
      const session = `bulk-session-${index}`;
      published.push(publishUserEvent(connection, index % 4 === 3 ? signedOut(`bulk-${(index - 1) % 250}`, `bulk-session-${index - 1}`) : signedIn(user, session)));
      if (index === 300) {
        await Promise.all(published);
        await waitFor(async () => (await (await system.jsm()).consumers.info("IDENTITY", "presence-projection")).ack_floor.stream_seq > 0, "presence to start");
        await system.stopService("presence", "SIGKILL");
      }
    }
    await Promise.all(published);
    await system.startService("presence");
    await caughtUp("presence-projection");
    const expected = await projectionFromStream();
    assert.deepEqual(projectionRows().map((row) => (row as { session_id: string }).session_id), expected);
  });

  it("rebuilds the projection from the stream with the same rows as before", async () => {
    // Its own events, so it holds whatever ran before it (or nothing did).
    const connection = await system.natsConnection();
    for (let index = 0; index < 300; index++) {
      await publishUserEvent(connection, index % 3 === 2 ? signedOut(`rebuild-${index - 1}`, `rebuild-session-${index - 1}`) : signedIn(`rebuild-${index}`, `rebuild-session-${index}`));
    }
    await caughtUp("presence-projection");
    const before = projectionRows();
    assert.ok(before.length >= 100);
    const projected = (await subjectCount("identity.v1.user.signed_in")) + (await subjectCount("identity.v1.user.signed_out"));
    const { stdout } = await run(process.execPath, ["scripts/meshwork.ts", "presence", "rebuild", "--json", "--presence", system.baseUrl("presence"), "--token", token], { cwd: ROOT });
    assert.equal(JSON.parse(stdout).eventsApplied, projected, "every sign-in and sign-out in the stream, once");
    assert.deepEqual(projectionRows(), before);
  });

  it("dead-letters a poison message after its tries, processes the events behind it, and applies the replay once", async () => {
    await caughtUp("presence-projection");
    await system.stopService("presence");
    const poisonId = uuidv7();
    await system.startService("presence", { MESHWORK_FAULTS: `reject-event=${poisonId}` });
    const connection = await system.natsConnection();
    const countBefore = await onlineCount();
    await publishUserEvent(connection, signedIn("poison-user", "poison-session"), undefined, poisonId);
    for (let index = 0; index < 5; index++) await publishUserEvent(connection, signedIn(`behind-${index}`, `behind-session-${index}`));
    await waitFor(async () => (await onlineCount()) === countBefore + 5, "the events behind the poison message", 2_000);
    // The redelivery backoff alone is 6.2 s (200 ms, 1 s, 5 s: consumer/spec.ts); on a busy CI
    // machine each delivery also waits for a CPU, so the wait leaves room beyond that schedule.
    await waitFor(async () => (await listDeadLetters(connection, "presence-projection")).length === 1, "the dead letter", 40_000, 200);
    const [letter] = await listDeadLetters(connection, "presence-projection");
    assert.equal(letter!.eventId, poisonId);
    assert.equal(letter!.deliveries, 4);
    assert.equal(letter!.error, `FaultInjectedError: fault reject-event: refusing event ${poisonId}`);
    assert.equal(letter!.originalSubject, "identity.v1.user.signed_in");

    await system.stopService("presence");
    await system.startService("presence");
    const cli = (...args: string[]) => run(process.execPath, ["scripts/meshwork.ts", "deadletters", ...args, "--nats", `nats://127.0.0.1:${system.natsPort}`], { cwd: ROOT });
    assert.match((await cli("list")).stdout, /presence-projection identity\.v1\.user\.signed_in/);
    assert.match((await cli("replay", "--consumer", "presence-projection")).stdout, /replayed 1 dead letter/);
    await waitFor(async () => (await onlineCount()) === countBefore + 6, "the replayed event applied", 5_000);
    assert.equal((await listDeadLetters(connection)).length, 0);
    await caughtUp("presence-projection");
    await caughtUp("audit-identity");
    assert.equal(await onlineCount(), countBefore + 6, "applied once");
  });

  it("keeps every event in audit with the trace id it was published under", async () => {
    // Enough events of its own for many pages, whatever ran before it.
    const connection = await system.natsConnection();
    for (let index = 0; index < 400; index++) await publishUserEvent(connection, signedIn(`audited-${index}`, `audited-session-${index}`));
    await caughtUp("audit-identity");
    const jsm = await system.jsm();
    const { state } = await jsm.streams.info("IDENTITY");
    const audit = system.client(AuditService, "audit", "connect", token);
    const audited = new Map<string, string>();
    const times: number[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      // Small pages: the walk crosses many page boundaries and must neither skip nor repeat.
      const page = await audit.listEvents({ pageSize: 37, pageToken });
      for (const event of page.events) {
        assert.ok(!audited.has(event.id), `event ${event.id} appears once`);
        audited.set(event.id, event.traceId);
        times.push(Number(event.time!.seconds) * 1000 + Math.floor(event.time!.nanos / 1e6));
      }
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken);
    assert.ok(pages > 10);
    const middle = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
    const since = await audit.listEvents({ pageSize: 500, since: timestampFromMs(middle), until: timestampFromMs(middle + 60_000) });
    assert.ok(since.events.length > 0);
    for (const event of since.events) assert.ok(Number(event.time!.seconds) * 1000 + event.time!.nanos / 1e6 >= middle, "time range filter");
    let checked = 0;
    const streamIds = new Set<string>();
    for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
      const message = await jsm.streams.getMessage("IDENTITY", { seq });
      if (!message) continue;
      const id = message.header.get("ce-id");
      streamIds.add(id);
      const traceId = traceIdOf(message.header.get("traceparent"));
      assert.match(traceId, /^[0-9a-f]{32}$/, `event ${seq} was published under a trace`);
      assert.equal(audited.get(id), traceId, `audit holds event ${id} with its trace id`);
      checked++;
    }
    assert.equal(checked, state.messages);
    // A replayed dead letter is the same event (same id) twice in the stream, and once in audit.
    assert.equal(audited.size, streamIds.size);
  });

  /** The projection as the stream implies it: live sessions after applying every event in order. */
  async function projectionFromStream(): Promise<string[]> {
    const jsm = await system.jsm();
    const { state } = await jsm.streams.info("IDENTITY");
    const sessions = new Map<string, number>();
    for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
      const message = await jsm.streams.getMessage("IDENTITY", { seq });
      if (!message) continue;
      const { event } = fromBinary(UserEventSchema, message.data);
      if (event.case === "signedIn") sessions.set(event.value.sessionId, timestampMs(event.value.expiresAt!));
      if (event.case === "signedOut") sessions.delete(event.value.sessionId);
    }
    return [...sessions.entries()].filter(([, expiresAt]) => expiresAt > Date.now()).map(([id]) => id).sort();
  }
});

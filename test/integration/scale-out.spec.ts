// Scaling out, run for real: two processes of a service on one PostgreSQL database and one NATS.
import assert from "node:assert/strict";
import { fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { jetstream } from "@nats-io/jetstream";
import { decodeJwt } from "jose";
import { uuidv7 } from "@meshwork/platform";
import { UserEventSchema } from "@meshwork/proto/meshwork/identity/v1/events_pb.js";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import * as v2 from "@meshwork/proto/meshwork/presence/v2/presence_pb.js";
import { waitFor, type ManagedProcess } from "../../scripts/lib/system.ts";
import { publishUserEvent, signedIn } from "../support/events.ts";
import { PROJECTION_CONSUMER } from "../../services/presence/src/events.ts";
import { adminToken, TestSystem } from "../support/harness.ts";
import { postgresAvailable, ThrowawayPostgres } from "../support/postgres.ts";

describe("scale-out: two processes of a service on one database", function () {
  this.timeout(180_000);
  const postgres = new ThrowawayPostgres();
  let system: TestSystem;
  const replicas: ManagedProcess[] = [];
  let second: { identity: string; identityAdmin: string; presenceAdmin: string };

  before(async function () {
    if (!postgresAvailable()) this.skip();
    await postgres.start(["identity", "presence"]);
    system = new TestSystem({
      services: ["identity", "presence"],
      env: { identity: { DATABASE_URL: postgres.url("identity") }, presence: { DATABASE_URL: postgres.url("presence") } },
    });
    await system.start();
    const identityB = await system.startReplica("identity");
    const presenceB = await system.startReplica("presence");
    replicas.push(identityB.process, presenceB.process);
    second = { identity: identityB.rpcUrl, identityAdmin: identityB.adminUrl, presenceAdmin: presenceB.adminUrl };
  });
  after(async () => {
    await Promise.all(replicas.map((replica) => replica.stop()));
    await system?.stop();
    await postgres.stop();
  });

  it("splits one durable consumer between two presence processes: the projection equals the stream, nothing applied twice", async () => {
    const token = await adminToken(system);
    const presence = system.client(v2.PresenceService, "presence", "connect", token);
    // The admin's own sign-in is an event too: counted before the baseline, or the count could
    // never reach it exactly once it lands after.
    const admin = decodeJwt(token).sub!;
    await waitFor(async () => (await presence.listOnlineUsers({ pageSize: 100 })).users.some((user) => user.userId === admin), "the admin's sign-in in the projection", 20_000);
    const before = (await presence.getPresenceSummary({})).onlineSessions;
    const appliedBefore = await Promise.all([system.adminUrl("presence"), second.presenceAdmin].map((url) => applied(url, PROJECTION_CONSUMER)));
    const connection = await system.natsConnection();
    const sessions = Array.from({ length: 300 }, () => uuidv7());
    await Promise.all(sessions.map((session) => publishUserEvent(connection, signedIn(uuidv7(), session))));

    await waitFor(async () => (await presence.getPresenceSummary({})).onlineSessions === before + BigInt(sessions.length), "presence to apply all 300 sign-ins", 60_000, 250);
    const appliedAfter = await Promise.all([system.adminUrl("presence"), second.presenceAdmin].map((url) => applied(url, PROJECTION_CONSUMER)));
    const byProcess = appliedAfter.map((count, index) => count - appliedBefore[index]!);
    assert.ok(byProcess.every((count) => count > 0), `both processes applied events: ${byProcess.join(" + ")}`);
    assert.equal(byProcess[0]! + byProcess[1]!, sessions.length, `each event applied once in all: ${byProcess.join(" + ")}`);
  });

  it("publishes through one relay at a time from two identity processes, each user's events in commit order", async () => {
    const clients = [system.client(IdentityService, "identity"), createClient(IdentityService, createConnectTransport({ baseUrl: second.identity, httpVersion: "1.1" }))];
    const publishedBefore = await Promise.all([system.adminUrl("identity"), second.identityAdmin].map((url) => published(url)));
    const users = Array.from({ length: 6 }, (_, index) => ({ email: `replica-${index}-${Date.now()}@example.com`, password: `replica-passphrase-${index}` }));
    const expected = new Map<string, string[]>();
    // Each user alternates between the two processes, sign-in then sign-out, four rounds; users run concurrently.
    await Promise.all(
      users.map(async (user, index) => {
        const { user: created } = await clients[index % 2]!.signUp({ ...user, displayName: `Replica ${index}` });
        const order = ["signedUp"];
        for (let round = 0; round < 4; round++) {
          const { accessToken } = await clients[round % 2]!.signIn(user);
          await clients[(round + 1) % 2]!.signOut({}, { headers: { authorization: `Bearer ${accessToken}` } });
          order.push("signedIn", "signedOut");
        }
        expected.set(created!.id, order);
      }),
    );
    const eventCount = [...expected.values()].reduce((sum, order) => sum + order.length, 0);

    let seen = new Map<string, string[]>();
    await waitFor(async () => {
      seen = await eventsByUser(system, new Set(expected.keys()));
      return [...expected].every(([user, order]) => seen.get(user)?.length === order.length);
    }, "every user's events on the stream", 30_000, 250);
    assert.deepEqual(Object.fromEntries(seen), Object.fromEntries(expected));
    const publishedAfter = await Promise.all([system.adminUrl("identity"), second.identityAdmin].map((url) => published(url)));
    const byProcess = publishedAfter.map((count, index) => count - publishedBefore[index]!);
    assert.equal(byProcess[0]! + byProcess[1]!, eventCount, `no event published by both relays: ${byProcess.join(" + ")}`);
  });

  it("holds the sign-in throttle across replicas: ten failures spread over both lock the account on either", async () => {
    const clients = [system.client(IdentityService, "identity"), createClient(IdentityService, createConnectTransport({ baseUrl: second.identity, httpVersion: "1.1" }))];
    const email = `throttled-${Date.now()}@example.com`;
    await clients[0]!.signUp({ email, password: "the-right-passphrase", displayName: "Throttled" });
    for (let attempt = 0; attempt < 10; attempt++) {
      await assert.rejects(clients[attempt % 2]!.signIn({ email, password: `wrong-${attempt}` }), (error: ConnectError) => error.code === Code.Unauthenticated);
    }
    for (const client of clients) {
      await assert.rejects(client.signIn({ email, password: "the-right-passphrase" }), (error: ConnectError) => error.code === Code.ResourceExhausted);
    }
  });
});

async function metric(adminUrl: string, name: string, labels: string[]): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${name}{`) && labels.every((label) => line.includes(label)))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}

function applied(adminUrl: string, consumer: string): Promise<number> {
  return metric(adminUrl, "meshwork_events_consumed_total", [`consumer="${consumer}"`, 'outcome="applied"']);
}

function published(adminUrl: string): Promise<number> {
  return metric(adminUrl, "meshwork_events_published_total", []);
}

/** The IDENTITY stream's events of these users, in stream order, as variant names. */
async function eventsByUser(system: TestSystem, users: Set<string>): Promise<Map<string, string[]>> {
  const consumer = await jetstream(await system.natsConnection()).consumers.get("IDENTITY");
  const pending = (await consumer.info()).num_pending;
  const byUser = new Map<string, string[]>();
  if (pending === 0) return byUser;
  const messages = await consumer.consume();
  let remaining = pending;
  for await (const message of messages) {
    const event = fromBinary(UserEventSchema, message.data).event;
    if (event.case && users.has(event.value.userId)) byUser.set(event.value.userId, [...(byUser.get(event.value.userId) ?? []), event.case]);
    if (--remaining === 0) break;
  }
  await messages.close();
  return byUser;
}

// The material's two compatibility cases, run against the real services, plus events both ways.
// "v1-era code" is identity's event schema as it was before SignedIn gained its optional
// auth_method field: the current descriptor with that field removed, which is exactly what the
// code published and decoded before the change.
import assert from "node:assert/strict";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { clone, create, createFileRegistry, fromBinary, toBinary, type DescMessage, type Message } from "@bufbuild/protobuf";
import { file_google_protobuf_timestamp, FileDescriptorProtoSchema, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type ConnectRouter, type Transport } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { jetstream } from "@nats-io/jetstream";
import { toHeaders, uuidv7 } from "@meshwork/platform";
import { PresenceClient } from "@meshwork/proto/clients/presence.ts";
import { AuditService } from "@meshwork/proto/meshwork/audit/v1/audit_pb.js";
import { file_meshwork_identity_v1_events, UserEventSchema } from "@meshwork/proto/meshwork/identity/v1/events_pb.js";
import * as v1 from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import * as v2 from "@meshwork/proto/meshwork/presence/v2/presence_pb.js";
import { waitFor } from "../../scripts/lib/system.ts";
import { adminToken, PROTOCOLS, TestSystem, type Protocol } from "../support/harness.ts";

const AUTH_METHOD_FIELD = 7;
const V1_ERA_USER_EVENT = userEventBefore(AUTH_METHOD_FIELD);

describe("compatibility, both directions", function () {
  this.timeout(120_000);
  // Presence's deprecation clock stays before v1's sunset, whatever day the test runs.
  const system = new TestSystem({ env: { presence: { MESHWORK_TEST_DEPRECATION_CLOCK: "2027-02-01T00:00:00Z" } } });
  let admin = "";
  before(async () => {
    await system.start();
    admin = await adminToken(system);
  });
  after(() => system.stop());

  describe("Case 1: B keeps speaking A1 to A2", () => {
    it("answers a v1 client from a server that serves v1 and v2, over every protocol", async () => {
      for (const protocol of PROTOCOLS) {
        const old = await system.client(v1.PresenceService, "presence", protocol, admin).getOnlineCount({});
        const summary = await system.client(v2.PresenceService, "presence", protocol, admin).getPresenceSummary({});
        assert.equal(old.count, summary.onlineUsers, protocol);
        assert.ok(old.count >= 1n);
      }
    });

    it("round-trips a message written by v1 code through the v1+v2 server unchanged", async () => {
      const userId = uuidv7();
      const written = toBinary(V1_ERA_USER_EVENT, v1EraSignedIn(userId));
      const eventId = await publishRaw(system, "identity.v1.user.signed_in", written);
      const audit = system.client(AuditService, "audit", "connect", admin);
      await waitFor(async () => (await audit.getEvent({ id: eventId }).catch(() => undefined)) !== undefined, "audit to keep the v1-era event", 15_000);
      const kept = await audit.getEvent({ id: eventId });
      assert.deepEqual(Buffer.from(kept.event!.payload), Buffer.from(written));
      assert.equal(readV1Era(kept.event!.payload).event.value.userId, userId);
    });
  });

  describe("Case 2: A is rolled back to A1 while C already speaks A2", () => {
    let rolledBack: { close(): Promise<void>; transport(protocol: Protocol): Transport };
    before(async () => (rolledBack = await startV1OnlyPresence(42n)));
    after(() => rolledBack.close());

    it("answers a v2 client Unimplemented from a server that serves only v1, over every protocol", async () => {
      for (const protocol of PROTOCOLS) {
        await assert.rejects(createClient(v2.PresenceService, rolledBack.transport(protocol)).getPresenceSummary({}), (error: unknown) => {
          assert.equal(ConnectError.from(error).code, Code.Unimplemented, protocol);
          return true;
        });
        assert.equal((await createClient(v1.PresenceService, rolledBack.transport(protocol)).getOnlineCount({})).count, 42n, protocol);
      }
    });

    it("falls back to v1 in the client library where a fallback is defined, and uses v2 where it is served", async () => {
      const degraded = await new PresenceClient(rolledBack.transport("grpc")).summary();
      assert.deepEqual(degraded, { onlineUsers: 42n, onlineSessions: undefined, answeredBy: "v1" });
      const full = await new PresenceClient(system.transport("presence", "grpc", admin)).summary();
      assert.equal(full.answeredBy, "v2");
      assert.ok(full.onlineSessions !== undefined && full.onlineSessions >= full.onlineUsers);
    });

    it("accepts a v2 message with a new optional field in v1 code, and keeps the unknown field when forwarding it", () => {
      const userId = uuidv7();
      const v2Bytes = toBinary(UserEventSchema, create(UserEventSchema, { event: { case: "signedIn", value: { ...v1EraSignedIn(userId).event.value, authMethod: "password" } } }));
      const readByV1 = readV1Era(v2Bytes);
      assert.equal(readByV1.event.value.userId, userId, "v1 code reads the fields it knows");
      assert.equal(readByV1.event.value.authMethod, undefined, "v1 code has no such field");
      const forwarded = toBinary(V1_ERA_USER_EVENT, readByV1 as unknown as Message);
      assert.deepEqual(Buffer.from(forwarded), Buffer.from(v2Bytes), "forwarded byte for byte, the unknown field included");
      const readByV2 = fromBinary(UserEventSchema, forwarded);
      assert.equal(readByV2.event.case === "signedIn" && readByV2.event.value.authMethod, "password");
    });
  });

  describe("events, both ways", () => {
    it("lets a v1 consumer handle v2-era events that identity publishes", async () => {
      const email = `compat-${Date.now()}@example.com`;
      await system.signIn(email, "compat-passphrase-1", "Compat User");
      const jsm = await system.jsm();
      // The relay publishes after the commit, so the answer can come before the event.
      let published: Uint8Array = new Uint8Array();
      await waitFor(async () => {
        published = (await jsm.streams.getMessage("IDENTITY", { last_by_subj: "identity.v1.user.signed_in" }))!.data;
        return readV1Era(published).event.value.email === email;
      }, "identity to publish the sign-in", 15_000, 100);
      assert.equal(fromBinary(UserEventSchema, published).event.value?.$typeName, "meshwork.identity.v1.UserEvent.SignedIn");
      const readByV1 = readV1Era(published);
      assert.equal(readByV1.event.value.email, email);
      assert.deepEqual(Buffer.from(toBinary(V1_ERA_USER_EVENT, readByV1 as unknown as Message)), Buffer.from(published), "the v2-era field survives a v1 consumer's re-publish");
      const current = fromBinary(UserEventSchema, published);
      assert.equal(current.event.case === "signedIn" && current.event.value.authMethod, "password");
    });

    it("lets a v2 consumer handle v1 events already in the stream: presence applies them and reads no auth method as password", async () => {
      const userId = uuidv7();
      const written = toBinary(V1_ERA_USER_EVENT, v1EraSignedIn(userId));
      await publishRaw(system, "identity.v1.user.signed_in", written);
      const presence = system.client(v2.PresenceService, "presence", "connect", admin);
      await waitFor(async () => (await presence.listOnlineUsers({ pageSize: 1000 })).users.some((user) => user.userId === userId), "presence to apply the v1-era event", 15_000);
      const readByV2 = fromBinary(UserEventSchema, written);
      assert.equal(readByV2.event.case === "signedIn" && (readByV2.event.value.authMethod ?? "password"), "password");
      assert.equal(readByV2.event.case === "signedIn" && readByV2.event.value.authMethod, undefined, "absent, not an empty string");
    });
  });
});

/** identity's UserEvent as v1-era code knew it: today's descriptor without SignedIn's field `number`. */
function userEventBefore(number: number): DescMessage {
  const file = clone(FileDescriptorProtoSchema, file_meshwork_identity_v1_events.proto);
  file.name = "meshwork/identity/v1/events_v1_era.proto";
  const signedIn = file.messageType.find((message) => message.name === "UserEvent")!.nestedType.find((message) => message.name === "SignedIn")!;
  signedIn.field = signedIn.field.filter((field) => field.number !== number);
  // proto3 `optional` is a synthetic oneof; without its field it must go too.
  signedIn.oneofDecl = [];
  const registry = createFileRegistry(file, (name) => (name === file_google_protobuf_timestamp.proto.name ? file_google_protobuf_timestamp : undefined));
  return registry.getMessage("meshwork.identity.v1.UserEvent")!;
}

function readV1Era(bytes: Uint8Array): V1EraSignedIn {
  return fromBinary(V1_ERA_USER_EVENT, bytes) as unknown as V1EraSignedIn;
}

// The v1-era schema is a runtime descriptor, so its messages are dynamic: typed loosely here.
interface V1EraSignedIn {
  event: { case: "signedIn"; value: { userId: string; email: string; displayName: string; sessionId: string; authMethod?: string; [field: string]: unknown } };
}

function v1EraSignedIn(userId: string): V1EraSignedIn & { $typeName: string } {
  return create(V1_ERA_USER_EVENT, {
    event: {
      case: "signedIn",
      value: {
        userId,
        email: `${userId}@example.com`,
        displayName: "From v1",
        sessionId: uuidv7(),
        occurredAt: timestampFromMs(Date.now()),
        expiresAt: timestampFromMs(Date.now() + 3_600_000),
      },
    },
  }) as unknown as V1EraSignedIn & { $typeName: string };
}

/** Publishes bytes on identity's subject with the CloudEvents headers identity's relay sets. */
async function publishRaw(system: TestSystem, subject: string, data: Uint8Array): Promise<string> {
  const id = uuidv7();
  const headers = toHeaders({ id, type: UserEventSchema.typeName, source: "meshwork/identity", subject, time: new Date() });
  await jetstream(await system.natsConnection()).publish(subject, data, { msgID: id, headers });
  return id;
}

/** presence as it was before v2: a server that serves meshwork.presence.v1 only, over all three protocols. */
async function startV1OnlyPresence(count: bigint): Promise<{ close(): Promise<void>; transport(protocol: Protocol): Transport }> {
  const routes = (router: ConnectRouter) =>
    router.service(v1.PresenceService, {
      getOnlineCount: () => create(v1.GetOnlineCountResponseSchema, { count }),
      listOnlineUsers: () => create(v1.ListOnlineUsersResponseSchema, {}),
    });
  const server = http2.createServer(connectNodeAdapter({ routes }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    close: () => new Promise((resolve) => server.close(() => resolve())),
    transport: (protocol) =>
      protocol === "grpc"
        ? createGrpcTransport({ baseUrl })
        : protocol === "grpc-web"
          ? createGrpcWebTransport({ baseUrl, httpVersion: "2" })
          : createConnectTransport({ baseUrl, httpVersion: "2" }),
  };
}

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import { fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { UserEventSchema } from "@meshwork/proto/meshwork/identity/v1/events_pb.js";
import { PresenceService } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import { Health } from "@meshwork/proto/grpc/health/v1/health_pb.js";
import { ROOT, waitFor } from "../../scripts/lib/system.ts";
import { TestSystem } from "../support/harness.ts";

const run = promisify(execFile);

describe("the sign-in flow, end to end", function () {
  this.timeout(120_000);
  const system = new TestSystem({ services: ["identity", "presence"] });
  // GetOnlineCount is open to any signed-in user: a member's token, named for what it is.
  let memberToken = "";

  before(async () => {
    await system.start();
    memberToken = await system.signIn("viewer@example.com", "a-viewer-passphrase");
  });
  after(() => system.stop());

  const onlineCount = async () => Number((await system.client(PresenceService, "presence", "connect", memberToken).getOnlineCount({})).count);

  it("serves a grpc-js client that loads only the .proto files", async () => {
    const definition = await protoLoader.load(
      ["meshwork/identity/v1/identity.proto", "meshwork/presence/v1/presence.proto"],
      { includeDirs: [path.join(ROOT, "proto")], keepCase: true, longs: String, defaults: true },
    );
    const loaded = grpc.loadPackageDefinition(definition) as unknown as {
      meshwork: {
        identity: { v1: { IdentityService: grpc.ServiceClientConstructor } };
        presence: { v1: { PresenceService: grpc.ServiceClientConstructor } };
      };
    };
    const credentials = grpc.credentials.createInsecure();
    const identity = new loaded.meshwork.identity.v1.IdentityService(`127.0.0.1:${system.ports.get("identity")!.rpc}`, credentials);
    const presence = new loaded.meshwork.presence.v1.PresenceService(`127.0.0.1:${system.ports.get("presence")!.rpc}`, credentials);
    const call = <T>(client: grpc.Client, method: string, request: object, metadata = new grpc.Metadata()) =>
      new Promise<T>((resolve, reject) =>
        (client as unknown as Record<string, Function>)[method]!.call(client, request, metadata, (error: Error | null, response: T) => (error ? reject(error) : resolve(response))),
      );
    const before = await onlineCount();
    const signedUp = await call<{ user: { email: string; roles: string[] } }>(identity, "SignUp", { email: "Grace@Example.com ", password: "grace-hopper-cobol-1959", display_name: "Grace" });
    assert.equal(signedUp.user.email, "grace@example.com");
    assert.deepEqual(signedUp.user.roles, ["member"]);
    const signedIn = await call<{ access_token: string }>(identity, "SignIn", { email: "grace@example.com", password: "grace-hopper-cobol-1959" });
    assert.match(signedIn.access_token, /^ey[\w-]+\.[\w-]+\.[\w-]+$/);
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${signedIn.access_token}`);
    await waitFor(async () => Number((await call<{ count: string }>(presence, "GetOnlineCount", {}, metadata)).count) === before + 1, "count to rise", 1_000);
    identity.close();
    presence.close();
  });

  it("answers plain curl with Connect JSON on the same port", async () => {
    const url = (service: string, method: string, name: "identity" | "presence") => `${system.baseUrl(name)}/${service}/${method}`;
    const curl = async (target: string, body: object, token?: string) => {
      const args = ["-s", "--http1.1", "-X", "POST", target, "-H", "content-type: application/json", "-d", JSON.stringify(body)];
      if (token) args.push("-H", `authorization: Bearer ${token}`);
      const { stdout } = await run("curl", args);
      return JSON.parse(stdout) as Record<string, unknown>;
    };
    const signUp = await curl(url("meshwork.identity.v1.IdentityService", "SignUp", "identity"), { email: "linus@example.com", password: "penguins-all-the-way-down", displayName: "Linus" });
    assert.equal((signUp["user"] as { email: string }).email, "linus@example.com");
    const signIn = await curl(url("meshwork.identity.v1.IdentityService", "SignIn", "identity"), { email: "linus@example.com", password: "penguins-all-the-way-down" });
    const token = signIn["accessToken"] as string;
    assert.ok(token);
    await waitFor(async () => {
      const count = await curl(url("meshwork.presence.v1.PresenceService", "GetOnlineCount", "presence"), {}, token);
      return Number(count["count"]) >= 1;
    }, "count over curl", 1_000);
  });

  it("serves gRPC-Web and gRPC over the same port as Connect", async () => {
    for (const protocol of ["grpc-web", "grpc"] as const) {
      const health = await system.client(Health, "identity", protocol).check({ service: "" });
      assert.equal(health.status, 1, `${protocol} health`);
      const count = await system.client(PresenceService, "presence", protocol, memberToken).getOnlineCount({});
      assert.ok(count.count >= 1n, `${protocol} count`);
    }
  });

  it("publishes SignedIn with CloudEvents headers and counts the user online within a second", async () => {
    const jsm = await system.jsm();
    const before = (await jsm.streams.info("IDENTITY")).state.last_seq;
    const countBefore = await onlineCount();
    await system.signIn("barbara@example.com", "liskov-substitution-1987");
    await waitFor(async () => (await onlineCount()) === countBefore + 1, "GetOnlineCount to rise by one", 1_000);
    const message = await jsm.streams.getMessage("IDENTITY", { last_by_subj: "identity.v1.user.signed_in" });
    assert.ok(message && message.seq > before);
    const headers = message.header;
    assert.equal(headers.get("ce-specversion"), "1.0");
    assert.equal(headers.get("ce-type"), "meshwork.identity.v1.UserEvent");
    assert.equal(headers.get("ce-source"), "meshwork/identity");
    assert.match(headers.get("ce-id"), /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(headers.get("Nats-Msg-Id"), headers.get("ce-id"));
    assert.ok(!Number.isNaN(Date.parse(headers.get("ce-time"))));
    assert.equal(headers.get("datacontenttype"), "application/protobuf");
    assert.match(headers.get("traceparent"), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    const event = fromBinary(UserEventSchema, message.data);
    assert.equal(event.event.case, "signedIn");
    assert.equal(event.event.value?.email, "barbara@example.com");
  });

  it("answers a wrong password with Unauthenticated, emits nothing and leaves the count alone", async () => {
    const jsm = await system.jsm();
    const beforeSignIn = (await jsm.streams.info("IDENTITY")).state.last_seq;
    await system.signIn("edsger@example.com", "goto-considered-harmful");
    // The relay publishes a few milliseconds after the reply: wait for this SignedIn, then for presence.
    const lastSignedIn = () => jsm.streams.getMessage("IDENTITY", { last_by_subj: "identity.v1.user.signed_in" }).then((message) => message?.seq ?? 0, () => 0);
    await waitFor(async () => (await lastSignedIn()) > beforeSignIn, "the SignedIn event in the stream");
    await waitFor(async () => (await jsm.consumers.info("IDENTITY", "presence-projection")).num_pending === 0, "presence to catch up");
    const before = (await jsm.streams.info("IDENTITY")).state.last_seq;
    const countBefore = await onlineCount();
    const identity = system.client(IdentityService, "identity");
    for (const attempt of [{ email: "edsger@example.com", password: "wrong-password-here" }, { email: "nobody@example.com", password: "whatever-it-is-here" }]) {
      await assert.rejects(identity.signIn(attempt), (error: ConnectError) => error.code === Code.Unauthenticated && error.rawMessage === "invalid email or password");
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal((await jsm.streams.info("IDENTITY")).state.last_seq, before);
    assert.equal(await onlineCount(), countBefore);
  });

  it("answers AlreadyExists for a taken email, whatever its case", async () => {
    const identity = system.client(IdentityService, "identity");
    await identity.signUp({ email: "alan@example.com", password: "turing-complete-1936", displayName: "Alan" });
    await assert.rejects(identity.signUp({ email: " ALAN@example.com", password: "turing-complete-1936", displayName: "Alan" }), (error: ConnectError) => error.code === Code.AlreadyExists);
  });

  it("refuses malformed input with InvalidArgument or the protocol's own error, and keeps serving", async () => {
    const identity = system.client(IdentityService, "identity");
    const invalid = (error: ConnectError) => error.code === Code.InvalidArgument;
    await assert.rejects(identity.signUp({ email: "", password: "", displayName: "" }), invalid);
    await assert.rejects(identity.signUp({ email: "not-an-email", password: "long-enough-passphrase", displayName: "X" }), invalid);
    await assert.rejects(identity.signUp({ email: "short@example.com", password: "short", displayName: "X" }), invalid);
    await assert.rejects(identity.signUp({ email: "common@example.com", password: "password123456", displayName: "X" }), invalid);
    await assert.rejects(identity.signIn({ email: "", password: "" }), invalid);
    await assert.rejects(
      identity.signUp({ email: "big@example.com", password: "p".repeat(2 * 1024 * 1024), displayName: "Big" }),
      (error: ConnectError) => error.code === Code.ResourceExhausted,
    );
    const response = await fetch(`${system.baseUrl("identity")}/meshwork.identity.v1.IdentityService/SignIn`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    assert.equal(response.status, 400);
    const garbage = await new Promise<string>((resolve) => {
      const socket = net.connect(system.ports.get("identity")!.rpc, "127.0.0.1", () => socket.write(Buffer.from([0x16, 0x03, 0x01, 0xff, 0x00, 0x13, 0x37, 0x0a, 0x0d, 0x0a, 0x0d, 0x0a])));
      let received = "";
      socket.on("data", (chunk) => (received += chunk.toString()));
      socket.on("close", () => resolve(received));
      socket.on("error", () => resolve(received));
      socket.setTimeout(3_000, () => socket.destroy());
    });
    assert.match(garbage, /^HTTP\/1\.1 400/);
    const health = await system.client(Health, "identity", "grpc").check({ service: "" });
    assert.equal(health.status, 1);
  });

  it("misses no event and counts none twice when presence is killed with SIGKILL and restarted", async () => {
    const jsm = await system.jsm();
    const countBefore = await onlineCount();
    await system.stopService("presence", "SIGKILL");
    const names = ["ken", "dennis", "brian"];
    for (const name of names) await system.signIn(`${name}@example.com`, `${name}-unix-passphrase`);
    await system.startService("presence");
    await waitFor(async () => (await jsm.consumers.info("IDENTITY", "presence-projection")).num_pending === 0, "presence to catch up", 10_000);
    await waitFor(async () => (await onlineCount()) === countBefore + names.length, "count to include exactly the new users", 5_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await onlineCount(), countBefore + names.length);
  });
});

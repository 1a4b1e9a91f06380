import assert from "node:assert/strict";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { context, propagation, SpanKind, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { clientTelemetryInterceptor } from "@meshwork/platform";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { waitFor } from "../../scripts/lib/system.ts";
import { OtlpReceiver, type ReceivedSpan } from "../support/otlp-receiver.ts";
import { TestSystem } from "../support/harness.ts";

describe("OpenTelemetry across processes", function () {
  this.timeout(120_000);
  const receiver = new OtlpReceiver();
  let system: TestSystem;
  const clientSpans = new InMemorySpanExporter();

  before(async () => {
    await receiver.start();
    system = new TestSystem({ commonEnv: receiver.env() });
    await system.start();
    // The test is the client: it records its own CLIENT span through the platform's interceptor.
    const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: clientSpans })] });
    trace.setGlobalTracerProvider(provider);
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  });
  after(async () => {
    await system.stop();
    await receiver.stop();
  });

  const password = "telemetry-passphrase-42";
  let accessToken = "";
  let traceId = "";

  it("follows one sign-in from the client through identity, its database, NATS, presence and audit", async () => {
    const identity = createClient(IdentityService, createConnectTransport({ baseUrl: system.baseUrl("identity"), httpVersion: "1.1", interceptors: [clientTelemetryInterceptor()] }));
    await identity.signUp({ email: "trace@example.com", password, displayName: "Trace" });
    clientSpans.reset();
    accessToken = (await identity.signIn({ email: "trace@example.com", password })).accessToken;
    const client = clientSpans.getFinishedSpans().find((span) => span.name === "meshwork.identity.v1.IdentityService/SignIn")!;
    assert.ok(client, "the client span");
    assert.equal(client.kind, SpanKind.CLIENT);
    traceId = client.spanContext().traceId;

    const find = (predicate: (span: ReceivedSpan) => boolean, what: string) => {
      const span = receiver.trace(traceId).find(predicate);
      assert.ok(span, `${what} in trace ${traceId}: ${receiver.trace(traceId).map((s) => `${s.service}:${s.name}`).join(", ")}`);
      return span;
    };
    await waitFor(
      () => receiver.trace(traceId).filter((span) => span.name.endsWith(" process") || span.name.endsWith(" publish")).length >= 3,
      "the publish and the consumers' spans",
      10_000,
      100,
    );

    const server = find((s) => s.service === "identity" && s.name === "meshwork.identity.v1.IdentityService/SignIn", "identity's server span");
    assert.equal(server.kind, 2, "SERVER");
    assert.equal(server.parentSpanId, client.spanContext().spanId, "child of the client call");
    assert.equal(server.attributes["rpc.service"], "meshwork.identity.v1.IdentityService");
    assert.equal(server.attributes["rpc.method"], "SignIn");
    assert.equal(server.attributes["rpc.system"], "connect_rpc");
    assert.equal(server.attributes["rpc.response.status_code"], "ok");

    const query = find((s) => s.service === "identity" && s.parentSpanId === server.spanId && s.attributes["db.operation.name"] === "SELECT", "identity's database read");
    assert.equal(query.kind, 3, "CLIENT");
    assert.equal(query.attributes["db.system"], "sqlite");
    assert.doesNotMatch(String(query.attributes["db.query.text"]), /trace@example\.com/, "no parameter values");
    find((s) => s.service === "identity" && s.parentSpanId === server.spanId && s.attributes["db.operation.name"] === "INSERT", "identity's outbox write");

    const publish = find((s) => s.service === "identity" && s.name === "identity.v1.user.signed_in publish", "the publish span");
    assert.equal(publish.kind, 4, "PRODUCER");
    assert.equal(publish.parentSpanId, server.spanId, "published in the trace of the request that committed it");
    assert.equal(publish.attributes["messaging.system"], "nats");
    assert.equal(publish.attributes["messaging.destination.name"], "identity.v1.user.signed_in");
    assert.match(String(publish.attributes["messaging.message.id"]), /^[0-9a-f-]{36}$/);

    for (const service of ["presence", "audit"]) {
      const processSpan = find((s) => s.service === service && s.name === "identity.v1.user.signed_in process", `${service}'s process span`);
      assert.equal(processSpan.kind, 5, "CONSUMER");
      assert.equal(processSpan.parentSpanId, publish.spanId, `${service} is parented by the publish`);
      assert.equal(processSpan.attributes["messaging.system"], "nats");
      assert.equal(processSpan.attributes["messaging.message.id"], publish.attributes["messaging.message.id"]);
      find((s) => s.service === service && s.parentSpanId === processSpan.spanId && s.attributes["db.operation.name"] === "INSERT", `${service}'s database write`);
    }
  });

  it("writes the trace and span ids into every log line inside a span", () => {
    const lines = system.processes.get("identity")!.output().split("\n").filter((line) => line.startsWith("{"));
    const signedIn = lines.map((line) => JSON.parse(line) as Record<string, string>).find((entry) => entry["msg"] === "signed in" && entry["trace_id"] === traceId);
    assert.ok(signedIn, "the sign-in's log line carries its trace id");
    assert.match(signedIn["span_id"]!, /^[0-9a-f]{16}$/);
  });

  it("never puts the password or the token in logs, spans or events", async () => {
    await waitFor(() => receiver.rawBodies.length > 0, "spans exported");
    const jsm = await system.jsm();
    const { state } = await jsm.streams.info("IDENTITY");
    let events = "";
    for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
      const message = await jsm.streams.getMessage("IDENTITY", { seq });
      if (!message) continue;
      events += Buffer.from(message.data).toString("latin1");
      for (const [key, values] of message.header) events += `${key}: ${values.join(",")}\n`;
    }
    const tokenSignature = accessToken.split(".")[2]!;
    for (const [where, text] of [["logs", system.allOutput()], ["spans", receiver.rawBodies.join("\n")], ["events", events]] as const) {
      assert.ok(text.length > 0, `captured ${where}`);
      assert.ok(!text.includes(password), `no password in ${where}`);
      assert.ok(!text.includes(tokenSignature), `no token in ${where}`);
    }
  });

  it("reports sign-ins and consumed events on /metrics", async () => {
    const metric = async (service: "identity" | "presence", pattern: RegExp) => {
      const text = await (await fetch(`${system.adminUrl(service)}/metrics`)).text();
      const match = text.split("\n").find((line) => pattern.test(line));
      return match === undefined ? undefined : Number(match.split(" ").at(-1));
    };
    /** A series that must be exported: a missing one fails here (NaN arithmetic would compare equal). */
    const exported = async (service: "identity" | "presence", pattern: RegExp) => {
      const value = await metric(service, pattern);
      assert.ok(value !== undefined && Number.isFinite(value), `${service} exports ${pattern}`);
      return value;
    };
    const signIns = /^meshwork_identity_sign_ins_total\{.*outcome="success"/;
    const consumed = /^meshwork_events_consumed_total\{.*consumer="presence-projection".*outcome="applied"/;
    // Before any sign-in of this test a series may not exist yet: it counts as zero.
    const signInsBefore = (await metric("identity", signIns)) ?? 0;
    const consumedBefore = (await metric("presence", consumed)) ?? 0;
    const n = 7;
    for (let index = 0; index < n; index++) await system.signIn(`metrics-${index}@example.com`, `metrics-passphrase-${index}`);
    await waitFor(async () => (await metric("presence", consumed)) === consumedBefore + n, "presence to consume them", 5_000, 100);
    assert.equal(await exported("identity", signIns), signInsBefore + n);
    assert.equal(await exported("presence", consumed), consumedBefore + n);
    const rpc = await exported("identity", /^rpc_server_duration_count\{.*rpc_method="SignIn".*code="ok"/);
    assert.ok(rpc >= n);
    assert.equal(await exported("identity", /^meshwork_outbox_backlog\{/), 0, "every committed event has been published");
    assert.ok((await exported("identity", /^meshwork_events_published_total/)) > 0);
  });
});

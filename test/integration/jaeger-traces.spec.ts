import assert from "node:assert/strict";
import { AuditService } from "@meshwork/proto/meshwork/audit/v1/audit_pb.js";
import { freePort, waitFor, type ManagedProcess } from "../../scripts/lib/system.ts";
import { jaegerExportEnv, startJaeger, type JaegerPorts } from "../../scripts/lib/jaeger.ts";
import { adminToken, TestSystem } from "../support/harness.ts";

interface JaegerSpan {
  spanID: string;
  operationName: string;
  references: { refType: string; spanID: string }[];
  processID: string;
  tags: { key: string; value: unknown }[];
}
interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string }>;
}

/** The trace of a sign-in, as Jaeger v2 stores and serves it to its UI (and to the console). */
describe("traces in Jaeger", function () {
  this.timeout(120_000);
  let jaeger: ManagedProcess;
  let ports: JaegerPorts;
  let system: TestSystem;

  before(async () => {
    ports = { query: await freePort(), queryGrpc: await freePort(), otlpHttp: await freePort(), health: await freePort() };
    jaeger = await startJaeger(ports);
    system = new TestSystem({ commonEnv: jaegerExportEnv(ports) });
    await system.start();
  });
  after(async () => {
    await system?.stop();
    await jaeger?.stop();
  });

  it("serves the sign-in trace as one tree across identity, NATS, presence and audit", async () => {
    const token = await system.signIn("jaeger@example.com", "a-jaeger-passphrase");
    const userId = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()).sub as string;
    // The trace id as audit recorded it from the event's traceparent: what the console links.
    const audit = system.client(AuditService, "audit", "connect", await adminToken(system));
    let traceId = "";
    await waitFor(async () => {
      const { events } = await audit.listEvents({ subjectPrefix: "identity.v1.user.signed_in", userId });
      traceId = events[0]?.traceId ?? "";
      return traceId !== "";
    }, "the SignedIn event in audit", 15_000, 100);

    let trace: JaegerTrace | undefined;
    const services = () => new Set(Object.values(trace?.processes ?? {}).map((process) => process.serviceName));
    await waitFor(async () => {
      const answer = await fetch(`http://127.0.0.1:${ports.query}/api/traces/${traceId}`);
      trace = answer.ok ? ((await answer.json()) as { data: JaegerTrace[] }).data[0] : undefined;
      const consumed = trace?.spans.filter((span) => span.operationName.endsWith(" process")).length ?? 0;
      return services().has("presence") && services().has("audit") && consumed >= 2;
    }, `trace ${traceId} in Jaeger with presence's and audit's spans`, 20_000, 250);

    const spans = trace!.spans;
    const service = (span: JaegerSpan) => trace!.processes[span.processID]!.serviceName;
    const named = (name: string, serviceName: string) => {
      const span = spans.find((candidate) => candidate.operationName === name && service(candidate) === serviceName);
      assert.ok(span, `${serviceName}: ${name} in ${spans.map((s) => `${service(s)}:${s.operationName}`).join(", ")}`);
      return span;
    };
    const parentOf = (span: JaegerSpan) => span.references.find((reference) => reference.refType === "CHILD_OF")?.spanID;

    const signIn = named("meshwork.identity.v1.IdentityService/SignIn", "identity");
    const publish = named("identity.v1.user.signed_in publish", "identity");
    assert.equal(publish.tags.find((tag) => tag.key === "messaging.system")?.value, "nats", "the publish is a NATS span");
    assert.equal(parentOf(publish), signIn.spanID, "published under the sign-in");
    for (const consumer of ["presence", "audit"]) {
      const process = named("identity.v1.user.signed_in process", consumer);
      assert.equal(parentOf(process), publish.spanID, `${consumer} consumed the event in the same trace`);
    }

    // One tree: a single root, and every other span's parent is in the trace.
    const ids = new Set(spans.map((span) => span.spanID));
    const roots = spans.filter((span) => !parentOf(span) || !ids.has(parentOf(span)!));
    assert.deepEqual(roots.map((span) => span.operationName), ["meshwork.identity.v1.IdentityService/SignIn"]);
    assert.ok(services().has("identity"));
  });
});

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
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
  // Jaeger UI's build output has the shape below (index.html with the placeholders Jaeger's query
  // server fills in, scripts under static/). The real build is not published by any registry that
  // is reachable here, so these files stand in for it: what is tested is that Jaeger serves the
  // assets MESHWORK_JAEGER_UI names, at the paths the console links to.
  const uiAssets = fs.mkdtempSync(path.join(os.tmpdir(), "meshwork-jaeger-ui-"));
  fs.mkdirSync(path.join(uiAssets, "static"));
  fs.writeFileSync(
    path.join(uiAssets, "index.html"),
    `<!doctype html><html><head><base href="/" data-inject-target="BASE_URL"/><title>Jaeger UI</title>
<script>const JAEGER_STORAGE_CAPABILITIES = DEFAULT_STORAGE_CAPABILITIES; const JAEGER_VERSION = DEFAULT_VERSION;</script>
<script type="module" src="./static/index-meshwork.js"></script></head><body><div id="jaeger-ui-root"></div></body></html>\n`,
  );
  fs.writeFileSync(path.join(uiAssets, "static/index-meshwork.js"), "document.getElementById('jaeger-ui-root').textContent = 'traces';\n");

  before(async () => {
    ports = { query: await freePort(), queryGrpc: await freePort(), otlpHttp: await freePort(), health: await freePort() };
    jaeger = await startJaeger(ports, { uiAssets });
    system = new TestSystem({ commonEnv: jaegerExportEnv(ports) });
    await system.start();
  });
  after(async () => {
    await system?.stop();
    await jaeger?.stop();
    fs.rmSync(uiAssets, { recursive: true, force: true });
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

  it("serves the UI assets it is given, on the trace links the console makes, with its settings filled in", async () => {
    const base = `http://127.0.0.1:${ports.query}`;
    for (const page of ["/", "/trace/0af7651916cd43dd8448eb211c80319c", "/search"]) {
      const answer = await fetch(base + page);
      assert.equal(answer.status, 200, page);
      const html = await answer.text();
      assert.match(html, /<title>Jaeger UI<\/title>/, `${page} is the UI's page`);
      // Jaeger's query server rewrites the placeholders: proof that it, not a file server, served it.
      assert.match(html, /JAEGER_STORAGE_CAPABILITIES = \{"archiveStorage":false\};/, page);
      assert.match(html, /JAEGER_VERSION = \{"gitCommit":/, page);
    }
    const script = await fetch(`${base}/static/index-meshwork.js`);
    assert.equal(script.status, 200);
    assert.match(await script.text(), /jaeger-ui-root/);
  });

  it("refuses a UI directory without index.html with the reason, before starting Jaeger", async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), "meshwork-jaeger-ui-empty-"));
    try {
      const free = { query: await freePort(), queryGrpc: await freePort(), otlpHttp: await freePort(), health: await freePort() };
      await assert.rejects(startJaeger(free, { uiAssets: empty }), /is not a built Jaeger UI: it has no index\.html/);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import { Health } from "@meshwork/proto/grpc/health/v1/health_pb.js";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "@meshwork/proto/grpc/health/v1/health_pb.js";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { PresenceService } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import { bundlePath, bundleService, escapeNonAscii } from "../../scripts/bundle-services.ts";
import { BUNDLE_NODE_FLAGS, ROOT, SERVICE_PROCESS_ENV } from "../../scripts/lib/system.ts";
import { TestSystem } from "../support/harness.ts";

/** Services run in images (and in make bench) from one esbuild bundle: scripts/bundle-services.ts. */
describe("a service bundled with esbuild", function () {
  let system: TestSystem;

  before(async () => {
    // presence is ready once it consumes identity's stream, so identity runs (bundled) too.
    await bundleService("identity");
    await bundleService("presence");
    system = await new TestSystem({ services: ["identity", "presence"], bundled: true }).start();
  });
  after(() => system?.stop());

  it("starts, serves gRPC and Connect through the platform's interceptors, and exports its metrics", async () => {
    for (const protocol of ["grpc", "connect"] as const) {
      const health = system.client(Health, "presence", protocol);
      assert.equal((await health.check({ service: "" })).status, ServingStatus.SERVING);
      // The auth interceptor is in the bundle: no token, no count.
      await assert.rejects(system.client(PresenceService, "presence", protocol).getOnlineCount({}), (error: ConnectError) => error.code === Code.Unauthenticated);
    }
    // The telemetry SDK was registered before the platform made its meters (bundle order).
    const metrics = await (await fetch(`${system.adminUrl("presence")}/metrics`)).text();
    assert.match(metrics, /rpc_server_duration/);
  });

  it("validates requests, with the validation stack the bundle imports on a request's first call", async () => {
    // rpc/validation.ts loads @bufbuild/protovalidate with import(): in the bundle esbuild keeps it
    // behind a lazy initialiser, which the first validated call runs.
    await assert.rejects(
      system.client(IdentityService, "identity", "grpc").signIn({ email: "", password: "x" }),
      (error: ConnectError) => error.code === Code.InvalidArgument && /email: .*\[string\.min_len\]/.test(error.rawMessage),
    );
  });

  it("names the TypeScript files and lines in stack traces, with the flags images use (no --enable-source-maps)", () => {
    assert.ok(!BUNDLE_NODE_FLAGS.includes("--enable-source-maps"), "the bundle maps its own frames (platform stack-traces.ts)");
    const crashed = spawnSync(process.execPath, [...BUNDLE_NODE_FLAGS, bundlePath("presence")], { env: { ...process.env, RPC_PORT: "not-a-port" }, encoding: "utf8" });
    assert.notEqual(crashed.status, 0);
    const frames = crashed.stderr.split("\n").filter((line) => line.trim().startsWith("at "));
    assert.match(frames[0] ?? "", /services\/platform\/src\/config\.ts:\d+:\d+/, crashed.stderr);
    assert.ok(frames.some((frame) => /services\/presence\/src\/config\.ts:\d+/.test(frame)), crashed.stderr);
    assert.ok(frames.some((frame) => /services\/presence\/src\/main\.ts:\d+/.test(frame)), crashed.stderr);
    // The source line Node prints above the trace is one of the bundle's short lines, not a whole minified module.
    assert.ok(crashed.stderr.length < 4_000, `a crash prints a readable report (${crashed.stderr.length} characters)`);
  });

  it("runs with the same Node flags in images, in Tilt and here (BUNDLE_NODE_FLAGS)", () => {
    const dockerfile = fs.readFileSync(`${ROOT}/services/Dockerfile`, "utf8");
    assert.deepEqual(JSON.parse(dockerfile.match(/^ENTRYPOINT (\[.*\])$/m)![1]!), ["node", ...BUNDLE_NODE_FLAGS, "service/dist/main.mjs"]);
    const tiltfile = fs.readFileSync(`${ROOT}/Tiltfile`, "utf8");
    assert.deepEqual(JSON.parse(tiltfile.match(/entrypoint=(\[.*\])/)![1]!.replaceAll("'", '"')), ["node", "--watch", ...BUNDLE_NODE_FLAGS, "service/dist/main.mjs"]);
  });

  it("starts with the same process environment in images (and so in Tilt) and here (SERVICE_PROCESS_ENV)", () => {
    const dockerfile = fs.readFileSync(`${ROOT}/services/Dockerfile`, "utf8");
    const imageEnv = Object.fromEntries([...dockerfile.matchAll(/(?:ENV |\\\n\s+)([A-Z_]+)=(\S+)/g)].map((match) => [match[1]!, match[2]!]));
    for (const [name, value] of Object.entries(SERVICE_PROCESS_ENV)) assert.equal(imageEnv[name], value, `services/Dockerfile sets ${name}=${value}`);
    // and the running service got it from the launcher
    const environ = fs.readFileSync(`/proc/${system.pid("presence")}/environ`, "utf8").split("\0");
    for (const [name, value] of Object.entries(SERVICE_PROCESS_ENV)) assert.ok(environ.includes(`${name}=${value}`), `presence runs with ${name}=${value}`);
  });

  it("is ASCII-only, so V8 holds its source text at one byte a character", () => {
    const text = fs.readFileSync(bundlePath("presence"), "utf8");
    assert.equal(text.search(/[^\x00-\x7f]/), -1);
    // The one that used to be left: @nats-io/jetstream's duration pattern, now escaped.
    assert.match(text, /\|us\|\\u00b5s\|/);
  });

  it("leaves out what a service does not load: the PostgreSQL driver, zod's other locales, child_process", () => {
    const text = fs.readFileSync(bundlePath("presence"), "utf8");
    // OpenTelemetry's host detector ran commands for the host id on other platforms, and its import
    // of child_process loaded it (and dgram) at every start (platform/src/host-detector.ts).
    assert.ok(!/\bfrom\s*"(node:)?child_process"/.test(text), "nothing in the bundle imports child_process");
    assert.match(text, /import\("pg"\)/);
    assert.ok(!text.includes('"node_modules/pg/'), "pg's modules are not in the bundle");
    assert.ok(text.includes('"node_modules/zod/v4/locales/en.js"'), "English stays");
    assert.ok(!text.includes('"node_modules/zod/v4/locales/de.js"'), "German and the rest do not");
  });

  it("escapes a dependency's non-ASCII characters without changing what they mean", () => {
    const cases = [
      "/(ns|us|µs|ms)/g.exec('12µs')[1]",
      "/[😀-🙏]/u.test('🙂')",
      "/^\\µ$/.test('µ')",
      "'naïve — ✓'",
      "`tab\\\\µ ${'é'}`",
      "'\\\\' + 'ü'",
    ];
    for (const source of cases) {
      const escaped = escapeNonAscii(source);
      assert.equal(escaped.search(/[^\x00-\x7f]/), -1, escaped);
      assert.deepEqual(new Function(`return ${escaped}`)(), new Function(`return ${source}`)(), `${source} -> ${escaped}`);
    }
  });
});

// The tools people already have, pointed at Meshwork's ports with nothing from this repository:
// grpcurl and buf curl by server reflection alone, browsers through CORS, curl through Connect GET.
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel as Idempotency } from "@bufbuild/protobuf/wkt";
import { cors } from "@connectrpc/connect";
import { decodeJwt } from "jose";
import { loadAccessTables } from "../../scripts/generate-access.ts";
import { ROOT, SERVICES, type ServiceName } from "../../scripts/lib/system.ts";
import { ADMIN, adminToken, TestSystem } from "../support/harness.ts";

const accessTables = await loadAccessTables();

const run = promisify(execFile);
const GRPCURL = path.join(ROOT, ".tools/bin/grpcurl");
const BUF = path.join(ROOT, "node_modules/.bin/buf");
const ALLOWED_ORIGIN = "http://localhost:5173";
const REFLECTION = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];

/** Every protobuf service the generated code defines, by full name: what a port may serve. */
const GENERATED_SERVICES = await generatedServices();

/**
 * The reads marked `idempotency_level = NO_SIDE_EFFECTS`. Pinned here because buf breaking does not
 * guard the mark (buf.yaml): dropping it from a .proto would break every GET client.
 */
const SIDE_EFFECT_FREE = [
  "/meshwork.audit.v1.AuditService/GetEvent",
  "/meshwork.audit.v1.AuditService/ListEvents",
  "/meshwork.audit.v1.DeadLetterService/ListDeadLetters",
  "/meshwork.identity.v1.IdentityService/GetAccountClosure",
  "/meshwork.identity.v1.IdentityService/GetJwks",
  "/meshwork.notifications.v1.NotificationsService/ListNotifications",
  "/meshwork.orders.v1.OrdersService/GetOrder",
  "/meshwork.presence.v1.PresenceService/GetOnlineCount",
  "/meshwork.presence.v1.PresenceService/ListOnlineUsers",
  "/meshwork.presence.v2.PresenceService/GetPresenceSummary",
  "/meshwork.presence.v2.PresenceService/ListOnlineUsers",
];

async function generatedServices(): Promise<Map<string, DescService>> {
  const dir = path.join(ROOT, "proto/gen");
  const services = new Map<string, DescService>();
  for (const file of fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((name) => name.endsWith("_pb.js"))) {
    const module = (await import(pathToFileURL(path.join(dir, file)).href)) as Record<string, unknown>;
    for (const value of Object.values(module)) {
      if ((value as DescService | undefined)?.kind === "service") services.set((value as DescService).typeName, value as DescService);
    }
  }
  return services;
}

function servedServices(name: ServiceName): string[] {
  return [...new Set(Object.keys(accessTables[name]!.methods).map((rpcPath) => rpcPath.split("/")[1]!))].sort();
}

function unaryMethods(name: ServiceName): { path: string; method: DescMethod }[] {
  return Object.keys(accessTables[name]!.methods).flatMap((rpcPath) => {
    const [, serviceName, methodName] = rpcPath.split("/");
    if (REFLECTION.includes(serviceName!)) return [];
    const service = GENERATED_SERVICES.get(serviceName!);
    assert.ok(service, `${rpcPath}: no generated service ${serviceName}`);
    const method = service.methods.find((candidate) => candidate.name === methodName);
    assert.ok(method, `${rpcPath} is not in ${serviceName}`);
    return method.methodKind === "unary" ? [{ path: rpcPath, method }] : [];
  });
}

describe("clients people already have", function () {
  this.timeout(120_000);
  const system = new TestSystem({ commonEnv: { CORS_ALLOWED_ORIGINS: `${ALLOWED_ORIGIN},http://127.0.0.1:*` } });
  let admin = "";
  let member = "";
  const address = (name: ServiceName) => `127.0.0.1:${system.ports.get(name)!.rpc}`;

  before(async () => {
    assert.ok(fs.existsSync(GRPCURL), `${GRPCURL} is missing: run scripts/install-tools.sh grpcurl (make test-integration does)`);
    await system.start();
    admin = await adminToken(system);
    member = await system.signIn("grace@example.com", "cobol-compiler-1959", "Grace");
  });
  after(() => system.stop());

  describe("server reflection", () => {
    it("grpcurl lists every service on every port, with nothing but -plaintext", async () => {
      for (const name of SERVICES) {
        const { stdout } = await run(GRPCURL, ["-plaintext", address(name), "list"]);
        const listed = stdout.trim().split("\n").sort();
        assert.deepEqual(listed, servedServices(name), `${name}: grpcurl list`);
        for (const expected of ["grpc.health.v1.Health", ...REFLECTION]) assert.ok(listed.includes(expected), `${name} lists ${expected}`);
      }
    });

    it("grpcurl describes a method and its messages, and calls SignIn with -d, by reflection alone", async () => {
      const { stdout: method } = await run(GRPCURL, ["-plaintext", address("identity"), "describe", "meshwork.identity.v1.IdentityService.SignIn"]);
      assert.match(method, /rpc SignIn \( \.meshwork\.identity\.v1\.SignInRequest \) returns \( \.meshwork\.identity\.v1\.SignInResponse \)/);
      // SignInResponse imports google/protobuf/timestamp.proto: dependencies must resolve too.
      const { stdout: message } = await run(GRPCURL, ["-plaintext", address("identity"), "describe", "meshwork.identity.v1.SignInResponse"]);
      assert.match(message, /\.google\.protobuf\.Timestamp expires_at = 2;/);
      const { stdout } = await run(GRPCURL, [
        "-plaintext",
        "-d",
        JSON.stringify({ email: "grace@example.com", password: "cobol-compiler-1959" }),
        address("identity"),
        "meshwork.identity.v1.IdentityService/SignIn",
      ]);
      const answer = JSON.parse(stdout) as { accessToken: string; user: { email: string } };
      assert.equal(answer.user.email, "grace@example.com");
      assert.match(answer.accessToken, /^ey[\w-]+\.[\w-]+\.[\w-]+$/);
    });

    it("grpcurl sends a token with -H and gets the refusal a member deserves", async () => {
      const refused = await run(GRPCURL, ["-plaintext", "-H", `authorization: Bearer ${member}`, "-d", "{}", address("presence"), "meshwork.presence.v1.PresenceService/ListOnlineUsers"]).then(
        () => undefined,
        (error: { stderr: string }) => error.stderr,
      );
      assert.match(refused ?? "", /Code: PermissionDenied/);
    });

    it("buf curl calls without --schema, over reflection v1 and v1alpha", async () => {
      for (const reflectProtocol of ["grpc-v1", "grpc-v1alpha"]) {
        const { stdout } = await run(BUF, [
          "curl",
          "--protocol",
          "grpc",
          "--http2-prior-knowledge",
          "--reflect-protocol",
          reflectProtocol,
          "-H",
          `authorization: Bearer ${admin}`,
          `http://${address("presence")}/meshwork.presence.v1.PresenceService/GetOnlineCount`,
        ]);
        assert.ok(Number((JSON.parse(stdout) as { count: string }).count) >= 1, `${reflectProtocol}: ${stdout}`);
      }
    });

    it("answers an unknown symbol with NOT_FOUND rather than a broken stream", async () => {
      const failed = await run(GRPCURL, ["-plaintext", address("identity"), "describe", "meshwork.identity.v1.NoSuchThing"]).then(
        () => "",
        (error: { stderr: string }) => error.stderr,
      );
      assert.match(failed, /Symbol not found: meshwork\.identity\.v1\.NoSuchThing/);
    });
  });

  describe("CORS for browsers", () => {
    const signIn = () => `http://${address("identity")}/meshwork.identity.v1.IdentityService/SignIn`;
    const preflight = (origin: string) =>
      fetch(signIn(), {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type,connect-protocol-version,authorization" },
      });

    it("answers a preflight from an allowed origin with Connect's methods and headers", async () => {
      for (const origin of [ALLOWED_ORIGIN, "http://127.0.0.1:8123"]) {
        const res = await preflight(origin);
        assert.equal(res.status, 204);
        assert.equal(res.headers.get("access-control-allow-origin"), origin);
        const methods = res.headers.get("access-control-allow-methods")!.split(/,\s*/);
        for (const method of cors.allowedMethods) assert.ok(methods.includes(method), `allows ${method}`);
        const headers = res.headers.get("access-control-allow-headers")!.toLowerCase().split(/,\s*/);
        for (const header of [...cors.allowedHeaders, "Authorization"]) assert.ok(headers.includes(header.toLowerCase()), `allows header ${header}`);
        assert.ok(Number(res.headers.get("access-control-max-age")) > 0);
      }
    });

    it("gives a disallowed origin no CORS headers at all", async () => {
      for (const origin of ["https://evil.example", "http://localhost:5174", "http://localhost:5173.evil.example"]) {
        const res = await preflight(origin);
        assert.equal(res.status, 403, origin);
        assert.deepEqual([...res.headers.keys()].filter((name) => name.startsWith("access-control-")), [], origin);
        const call = await fetch(signIn(), { method: "POST", headers: { origin, "content-type": "application/json" }, body: "{}" });
        assert.deepEqual([...call.headers.keys()].filter((name) => name.startsWith("access-control-")), [], `${origin}: actual call`);
      }
    });

    it("lets an allowed origin read the answer and Connect's exposed headers", async () => {
      const res = await fetch(signIn(), {
        method: "POST",
        headers: { origin: ALLOWED_ORIGIN, "content-type": "application/json" },
        body: JSON.stringify({ email: "grace@example.com", password: "cobol-compiler-1959" }),
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("access-control-allow-origin"), ALLOWED_ORIGIN);
      assert.match(res.headers.get("vary") ?? "", /Origin/);
      const exposed = res.headers.get("access-control-expose-headers")!.toLowerCase().split(/,\s*/);
      for (const header of cors.exposedHeaders) assert.ok(exposed.includes(header.toLowerCase()), `exposes ${header}`);
    });
  });

  describe("Connect GET", () => {
    const get = (name: ServiceName, rpcPath: string, message: unknown, token?: string) =>
      fetch(`http://${address(name)}${rpcPath}?encoding=json&message=${encodeURIComponent(JSON.stringify(message))}`, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
    const post = async (name: ServiceName, rpcPath: string, message: unknown, token?: string) => {
      const res = await fetch(`http://${address(name)}${rpcPath}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(message),
      });
      assert.equal(res.status, 200, `POST ${rpcPath}: ${res.status}`);
      return res.json() as Promise<Record<string, unknown>>;
    };

    it("marks exactly the reads side-effect-free", () => {
      const marked = SERVICES.flatMap((name) => unaryMethods(name))
        .filter(({ method }) => method.idempotency === Idempotency.NO_SIDE_EFFECTS)
        .map(({ path: rpcPath }) => rpcPath);
      assert.deepEqual([...new Set(marked)].sort(), SIDE_EFFECT_FREE);
    });

    it("serves every side-effect-free method over GET, with Cache-Control as each deserves", async () => {
      const order = (await post("orders", "/meshwork.orders.v1.OrdersService/PlaceOrder", {
        items: [{ sku: "mug", quantity: 1, unitPriceCents: "1250" }],
        currency: "EUR",
        shippingAddress: { recipient: "Grace", line1: "1 Harbor Rd", city: "Arlington", postalCode: "22201", countryCode: "US" },
      }, member)) as { order: { id: string } };
      const events = (await post("audit", "/meshwork.audit.v1.AuditService/ListEvents", { pageSize: 1 }, admin)) as { events: { id: string }[] };
      assert.ok(events.events[0], "audit has at least one event");
      const leaver = decodeJwt(await system.signIn("leaver@example.com", "a-passphrase-to-leave-with")).sub!;
      await post("identity", "/meshwork.identity.v1.IdentityService/CloseAccount", { userId: leaver }, admin);
      // `empty`: a healthy system has nothing to list, and proto3 JSON answers an empty list as {}.
      const requests: Record<string, { service: ServiceName; message: unknown; token?: string; cacheControl: string; empty?: true }> = {
        "/meshwork.identity.v1.IdentityService/GetJwks": { service: "identity", message: {}, cacheControl: "public, max-age=60" },
        "/meshwork.identity.v1.IdentityService/GetAccountClosure": { service: "identity", message: { userId: leaver }, token: admin, cacheControl: "no-store" },
        "/meshwork.notifications.v1.NotificationsService/ListNotifications": { service: "notifications", message: { userId: leaver }, token: admin, cacheControl: "no-store" },
        "/meshwork.orders.v1.OrdersService/GetOrder": { service: "orders", message: { id: order.order.id }, token: member, cacheControl: "no-store" },
        "/meshwork.audit.v1.AuditService/ListEvents": { service: "audit", message: { pageSize: 5 }, token: admin, cacheControl: "no-store" },
        "/meshwork.audit.v1.DeadLetterService/ListDeadLetters": { service: "audit", message: {}, token: admin, cacheControl: "no-store", empty: true },
        "/meshwork.audit.v1.AuditService/GetEvent": { service: "audit", message: { id: events.events[0].id }, token: admin, cacheControl: "no-store" },
        "/meshwork.presence.v1.PresenceService/GetOnlineCount": { service: "presence", message: {}, token: member, cacheControl: "no-store" },
        "/meshwork.presence.v1.PresenceService/ListOnlineUsers": { service: "presence", message: {}, token: admin, cacheControl: "no-store" },
        "/meshwork.presence.v2.PresenceService/GetPresenceSummary": { service: "presence", message: {}, token: member, cacheControl: "no-store" },
        "/meshwork.presence.v2.PresenceService/ListOnlineUsers": { service: "presence", message: {}, token: admin, cacheControl: "no-store" },
      };
      assert.deepEqual(Object.keys(requests).sort(), SIDE_EFFECT_FREE);
      for (const [rpcPath, request] of Object.entries(requests)) {
        const res = await get(request.service, rpcPath, request.message, request.token);
        const body = await res.text();
        assert.equal(res.status, 200, `GET ${rpcPath}: ${res.status} ${body}`);
        assert.equal(res.headers.get("cache-control"), request.cacheControl, `GET ${rpcPath}: Cache-Control`);
        assert.equal(Object.keys(JSON.parse(body) as object).length === 0, request.empty === true, `GET ${rpcPath} answered ${body}`);
      }
      // The same answer as POST, for reads that cannot change in between.
      const jwksRequest = requests["/meshwork.identity.v1.IdentityService/GetJwks"]!;
      assert.deepEqual(
        await (await get("identity", "/meshwork.identity.v1.IdentityService/GetJwks", {})).json(),
        await post("identity", "/meshwork.identity.v1.IdentityService/GetJwks", jwksRequest.message),
      );
    });

    it("never caches a refusal, and still checks the token on GET", async () => {
      const res = await get("presence", "/meshwork.presence.v1.PresenceService/ListOnlineUsers", {}, member);
      assert.equal(res.status, 403);
      assert.equal(res.headers.get("cache-control"), "no-store");
      const anonymous = await get("audit", "/meshwork.audit.v1.AuditService/ListEvents", {});
      assert.equal(anonymous.status, 401);
    });

    it("refuses GET on every method that is not side-effect-free", async () => {
      let checked = 0;
      for (const name of SERVICES) {
        for (const { path: rpcPath, method } of unaryMethods(name)) {
          if (method.idempotency === Idempotency.NO_SIDE_EFFECTS) continue;
          const res = await get(name, rpcPath, {}, admin);
          assert.equal(res.status, 405, `GET ${rpcPath} must be refused`);
          checked++;
        }
      }
      assert.ok(checked >= 10, `checked ${checked} POST-only methods`);
    });
  });

  describe("the chart's NOTES.txt", () => {
    it("prints grpcurl and curl commands that work against a service, as printed", async () => {
      const commands = notesCommands();
      assert.ok(commands.some((command) => command.startsWith("grpcurl -plaintext localhost:50051 list")), commands.join("\n"));
      assert.ok(commands.some((command) => command.includes("GetJwks?encoding=json")), "a Connect GET");
      for (const command of commands) {
        // NOTES point at a port-forward of identity, or the gateway that routes this path to it;
        // here identity listens elsewhere.
        const runnable = command
          .replaceAll("localhost:50051", address("identity"))
          .replace(/\$GATEWAY:\d+/g, address("identity")).replaceAll('"password":"..."', `"password":"${ADMIN.password}"`);
        const { stdout } = await run("bash", ["-e", "-o", "pipefail", "-c", runnable], { env: { ...process.env, PATH: `${path.dirname(GRPCURL)}:${process.env["PATH"]}` } });
        assert.match(stdout, /meshwork\.identity\.v1\.IdentityService|"status": "SERVING"|accessToken|jwksJson/, `${command}\nprinted: ${stdout}`);
      }
    });
  });
});

/** The grpcurl and curl commands NOTES.txt prints after `helm install` (continuation lines joined). */
function notesCommands(): string[] {
  // helm template does not render NOTES.txt, so render a copy of it as a manifest of a copied chart.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "meshwork-notes-"));
  try {
    const chart = path.join(dir, "meshwork");
    fs.cpSync(path.join(ROOT, "charts/meshwork"), chart, { recursive: true });
    fs.renameSync(path.join(chart, "templates/NOTES.txt"), path.join(chart, "files/notes.txt"));
    fs.writeFileSync(path.join(chart, "templates/notes.yaml"), 'notes: {{ tpl (.Files.Get "files/notes.txt") . | toJson }}\n');
    const helm = fs.existsSync(path.join(ROOT, ".tools/bin/helm")) ? path.join(ROOT, ".tools/bin/helm") : "helm";
    const rendered = execFileSync(
      helm,
      ["template", "meshwork", chart, "-n", "meshwork", "--kube-version", "1.35.0", "-f", path.join(chart, "values-dev.yaml"), "--set", `identity.admin.email=${ADMIN.email}`, "--show-only", "templates/notes.yaml"],
      { encoding: "utf8" },
    );
    const notes = (JSON.parse(rendered.replace(/^---\n# Source: .*\n/, "").replace(/^notes: /, "")) as string).replace(/\\\n\s*/g, "");
    return notes
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => /^(grpcurl|curl) /.test(line));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

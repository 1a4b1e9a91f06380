// The mesh policy and the services' own method tables must not drift: the chart renders its
// AuthorizationPolicies from charts/meshwork/files/access.json (generated from each service's
// table), and this spec renders the chart with helm and checks that the policies name exactly
// the principals and paths that file implies, no more and no fewer.
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseAllDocuments } from "yaml";
import { DEFAULT_PORTS } from "../../scripts/lib/system.ts";

const root = resolve(import.meta.dirname, "../..");
const chartDir = join(root, "charts/meshwork");
const namespace = "meshwork";
const issuer = "meshwork-identity";
const gatewayPrincipal = `cluster.local/ns/${namespace}/sa/meshwork-gateway-istio`;

interface Method { public: boolean; roles: string[]; services: string[] }
interface ServiceTable { methods: Record<string, Method>; callers: Record<string, string[]> }
interface AccessTable { services: Record<string, ServiceTable> }

interface Source { principals?: string[]; requestPrincipals?: string[] }
interface Operation { paths?: string[]; ports?: string[]; methods?: string[] }
interface Rule { from?: { source: Source }[]; to?: { operation: Operation }[] }
interface K8sObject {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
}

// The chart's default ports are the local ones (charts/meshwork/values.yaml follows them).
const ports: Record<string, { rpc: number; admin: number }> = DEFAULT_PORTS;

describe("mesh policy rendered from files/access.json", function () {
  this.timeout(60_000);
  const access = JSON.parse(readFileSync(join(chartDir, "files/access.json"), "utf8")) as AccessTable;

  it("allows exactly the gateway and the declared callers on exactly their paths", function () {
    const objects = render(chartDir);
    for (const name of Object.keys(access.services)) {
      assert.deepEqual(grants(policy(objects, name)), expectedGrants(access, name), `AuthorizationPolicy meshwork-${name}`);
    }
  });

  it("keeps health and both reflection versions public on every service, in the table and the rendered policy", function () {
    const objects = render(chartDir);
    const publicPaths = [
      "/grpc.health.v1.Health/Check",
      "/grpc.health.v1.Health/Watch",
      "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ];
    for (const name of Object.keys(access.services)) {
      for (const path of publicPaths) {
        assert.deepEqual(access.services[name]!.methods[path], { public: true, roles: [], services: [] }, `${name}: ${path} in access.json`);
        assert.ok(grants(policy(objects, name)).includes(grant(gatewayPrincipal, path, false)), `meshwork-${name} lets ${path} through without a token`);
      }
    }
  });

  it("renders caller rules from the table, requiring a token on non-public paths", function () {
    const table = withCallers(access);
    const objects = renderWithAccess(table);
    for (const name of Object.keys(table.services)) {
      assert.deepEqual(grants(policy(objects, name)), expectedGrants(table, name), `AuthorizationPolicy meshwork-${name}`);
    }
    const presence = grants(policy(objects, "presence"));
    assert.ok(presence.includes(`cluster.local/ns/${namespace}/sa/meshwork-audit -> /meshwork.presence.v1.PresenceService/GetOnlineCount (token)`));
  });

  it("fails the comparison when the policy and the table disagree", function () {
    const objects = render(chartDir);
    const drifted = withCallers(access);
    const mismatched = Object.keys(drifted.services).filter(
      (name) => JSON.stringify(grants(policy(objects, name))) !== JSON.stringify(expectedGrants(drifted, name)),
    );
    assert.deepEqual(mismatched.sort(), ["identity", "presence"]);
  });

  it("refuses to render a service that has no access table", function () {
    const table: AccessTable = structuredClone(access);
    delete table.services["audit"];
    assert.throws(() => renderWithAccess(table), /audit has no entry in charts\/meshwork\/files\/access\.json/);
  });

  it("denies by default and lets only the JWKS through without a peer principal", function () {
    const objects = render(chartDir);
    const allowNothing = find(objects, "AuthorizationPolicy", "allow-nothing");
    assert.deepEqual(allowNothing.spec, {});
    for (const name of Object.keys(access.services)) {
      const open = rules(policy(objects, name)).filter((rule) => !rule.from);
      if (name === "identity") {
        assert.deepEqual(open, [{ to: [{ operation: { ports: ["9051"], methods: ["GET"], paths: ["/.well-known/jwks.json"] } }] }]);
      } else {
        assert.deepEqual(open, [], `meshwork-${name} has rules without a source`);
      }
    }
  });

  it("requires mTLS everywhere except plain-text JWKS fetches by istiod", function () {
    const objects = render(chartDir);
    assert.deepEqual(find(objects, "PeerAuthentication", "default").spec, { mtls: { mode: "STRICT" } });
    assert.deepEqual(find(objects, "PeerAuthentication", "meshwork-identity-jwks").spec?.["portLevelMtls"], {
      9051: { mode: "PERMISSIVE" },
    });
  });

  it("verifies identity's tokens at every workload and forwards them", function () {
    const objects = render(chartDir);
    for (const name of [...Object.keys(access.services).map((s) => `meshwork-${s}`), "meshwork-gateway"]) {
      const jwtRules = find(objects, "RequestAuthentication", name).spec?.["jwtRules"];
      assert.deepEqual(jwtRules, [{
        issuer,
        audiences: ["meshwork"],
        jwksUri: `http://identity.${namespace}.svc.cluster.local:9051/.well-known/jwks.json`,
        forwardOriginalToken: true,
      }]);
    }
  });
});

// "principal -> path" lines the table implies; "(token)" marks rules that need a request principal.
function expectedGrants(access: AccessTable, name: string): string[] {
  const table = access.services[name];
  assert.ok(table, `no access table for ${name}`);
  const lines = Object.entries(table.methods).map(([path, method]) =>
    grant(gatewayPrincipal, path, !method.public));
  for (const [caller, paths] of Object.entries(table.callers)) {
    for (const path of paths) {
      const method = table.methods[path];
      assert.ok(method, `${caller} may call ${path}, which ${name} does not serve`);
      lines.push(grant(`cluster.local/ns/${namespace}/sa/meshwork-${caller}`, path, !method.public));
    }
  }
  return lines.sort();
}

// The same lines read back from a rendered AuthorizationPolicy (rules with a source only).
function grants(policyObject: K8sObject): string[] {
  const name = policyObject.metadata.name.replace(/^meshwork-/, "");
  const rpcPort = String(ports[name]?.rpc);
  const lines: string[] = [];
  for (const rule of rules(policyObject)) {
    for (const { source } of rule.from ?? []) {
      const token = (source.requestPrincipals ?? []).length > 0;
      if (token) assert.deepEqual(source.requestPrincipals, [`${issuer}/*`]);
      for (const { operation } of rule.to ?? []) {
        assert.deepEqual(operation.ports, [rpcPort], `${policyObject.metadata.name}: rules stay on the RPC port`);
        for (const principal of source.principals ?? []) {
          for (const path of operation.paths ?? []) lines.push(grant(principal, path, token));
        }
      }
    }
  }
  return lines.sort();
}

function grant(principal: string, path: string, token: boolean): string {
  return `${principal} -> ${path}${token ? " (token)" : ""}`;
}

function rules(policyObject: K8sObject): Rule[] {
  assert.equal(policyObject.spec?.["action"], "ALLOW");
  return (policyObject.spec?.["rules"] ?? []) as Rule[];
}

function policy(objects: K8sObject[], service: string): K8sObject {
  return find(objects, "AuthorizationPolicy", `meshwork-${service}`);
}

function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  assert.ok(found, `no ${kind} ${name} rendered`);
  return found;
}

// A table where audit calls presence (a token-guarded method and health) and presence calls
// identity's public SignIn and its token-guarded SignOut.
function withCallers(access: AccessTable): AccessTable {
  const table: AccessTable = structuredClone(access);
  const presence = table.services["presence"];
  const identity = table.services["identity"];
  assert.ok(presence && identity);
  presence.callers["audit"] = ["/grpc.health.v1.Health/Check", "/meshwork.presence.v1.PresenceService/GetOnlineCount"];
  identity.callers["presence"] = ["/meshwork.identity.v1.IdentityService/SignIn", "/meshwork.identity.v1.IdentityService/SignOut"];
  return table;
}

function renderWithAccess(table: AccessTable): K8sObject[] {
  const dir = mkdtempSync(join(tmpdir(), "meshwork-chart-"));
  try {
    cpSync(chartDir, join(dir, "meshwork"), { recursive: true });
    writeFileSync(join(dir, "meshwork/files/access.json"), JSON.stringify(table));
    return render(join(dir, "meshwork"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function render(chart: string): K8sObject[] {
  const out = execFileSync(helmBinary(), [
    "template", "meshwork", chart, "--namespace", namespace, "--kube-version", "1.35.0",
    "-f", join(chart, "values-dev.yaml"),
  ], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  return parseAllDocuments(out)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

function helmBinary(): string {
  const pinned = join(root, ".tools/bin/helm");
  return existsSync(pinned) ? pinned : "helm";
}

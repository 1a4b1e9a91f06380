// The chart's optional console, monitoring and load generator, rendered with helm: each carries
// the repository's one source (the dashboard and alert files, the services' ports), and each is
// off unless asked for.
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse, parseAllDocuments } from "yaml";

const ROOT = resolve(import.meta.dirname, "../..");
const CHART = resolve(ROOT, "charts/meshwork");
const HELM = resolve(ROOT, ".tools/bin/helm");

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

function render(...sets: string[]): K8sObject[] {
  const output = execFileSync(HELM, ["template", "meshwork", CHART, "--namespace", "meshwork", "--kube-version", "1.35.0", ...sets.flatMap((set) => ["--set", set])], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  return parseAllDocuments(output).map((doc) => doc.toJS() as K8sObject).filter(Boolean);
}

const find = (objects: K8sObject[], kind: string, name: string) => objects.find((object) => object.kind === kind && object.metadata.name === name);

describe("chart: console, monitoring and load generator", () => {
  it("renders none of them by default", () => {
    const objects = render();
    for (const [kind, name] of [["Deployment", "meshwork-console"], ["ConfigMap", "meshwork-dashboard"], ["PrometheusRule", "meshwork"], ["Job", "meshwork-loadgen"]] as const) {
      assert.equal(find(objects, kind, name), undefined, `${kind} ${name}`);
    }
  });

  it("ships the dashboard and the alert rules exactly as the files the tests check", () => {
    const objects = render("monitoring.enabled=true", "monitoring.serviceMonitor.enabled=true");
    const dashboard = find(objects, "ConfigMap", "meshwork-dashboard")!;
    assert.equal(dashboard.metadata.labels?.["grafana_dashboard"], "1", "the Grafana sidecar's label");
    assert.deepEqual(JSON.parse(dashboard.data!["meshwork.json"]!), JSON.parse(readFileSync(resolve(CHART, "files/monitoring/dashboard.json"), "utf8")));
    const rule = find(objects, "PrometheusRule", "meshwork")!;
    assert.deepEqual(rule.spec, parse(readFileSync(resolve(CHART, "files/monitoring/alerts.yaml"), "utf8")), "promtool checks the same rules");
    const monitor = find(objects, "ServiceMonitor", "meshwork")!;
    assert.deepEqual(monitor.spec!["endpoints"], [{ port: "http-admin", path: "/metrics", interval: "30s" }]);
  });

  it("puts the console on the gateway's / when the mesh is on, and lets it proxy the services when it is off", () => {
    const meshed = render("console.enabled=true", "mesh.enabled=true");
    const route = find(meshed, "HTTPRoute", "meshwork-console")!;
    assert.deepEqual((route.spec!["rules"] as { matches: unknown[] }[])[0]!.matches, [{ path: { type: "PathPrefix", value: "/" } }]);
    const env = (objects: K8sObject[]) =>
      ((find(objects, "Deployment", "meshwork-console")!.spec!["template"] as { spec: { containers: { env: { name: string; value: string }[] }[] } }).spec.containers[0]!.env);
    assert.equal(env(meshed).some((variable) => variable.name === "IDENTITY_URL"), false, "the gateway routes the RPC paths");
    const plain = render("console.enabled=true");
    assert.ok(env(plain).some((variable) => variable.name === "IDENTITY_URL" && variable.value === "http://identity:50051"));
  });

  it("runs the load generator as a Job with the users and rate asked for", () => {
    const job = find(render("loadgen.enabled=true", "loadgen.users=25", "loadgen.rate=12"), "Job", "meshwork-loadgen")!;
    const env = (job.spec!["template"] as { spec: { containers: { env: { name: string; value: string }[] }[] } }).spec.containers[0]!.env;
    const value = (name: string) => env.find((variable) => variable.name === name)?.value;
    assert.equal(value("LOAD_USERS"), "25");
    assert.equal(value("LOAD_RATE"), "12");
    assert.equal(value("ORDERS_URL"), "http://orders:50054");
  });

  it("rejects unknown keys under the new sections", () => {
    assert.throws(() => render("monitoring.notAKey=true"));
    assert.throws(() => render("loadgen.notAKey=true"));
  });
});

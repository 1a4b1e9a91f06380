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

  const jobEnv = (objects: K8sObject[]) => {
    const job = find(objects, "Job", "meshwork-loadgen")!;
    const pod = job.spec!["template"] as { metadata: { annotations?: Record<string, string> }; spec: { containers: { env: { name: string; value: string }[] }[] } };
    return { annotations: pod.metadata.annotations ?? {}, env: Object.fromEntries(pod.spec.containers[0]!.env.map((variable) => [variable.name, variable.value])) };
  };

  it("sends the load generator in at the gateway when the mesh is on, as users come in, and refuses a mesh without one", () => {
    const { env, annotations } = jobEnv(render("loadgen.enabled=true", "mesh.enabled=true", "mesh.gateway.hostname=shop.example.com"));
    assert.equal(env["LOAD_BASE_URL"], "http://meshwork-gateway-istio.meshwork.svc:80", "the Service Istio deploys for the Gateway");
    assert.equal(env["LOAD_HOST"], "shop.example.com", "the hostname the gateway's routes match");
    assert.equal(env["IDENTITY_URL"], undefined, "not the services directly: their policies admit only the gateway and their callers");
    assert.equal(annotations["sidecar.istio.io/inject"], "false", "no sidecar: the Job completes when the load generator exits");
    assert.equal(jobEnv(render("loadgen.enabled=true", "mesh.enabled=true", "loadgen.baseUrl=https://shop.example.com")).env["LOAD_BASE_URL"], "https://shop.example.com");
    assert.throws(() => render("loadgen.enabled=true", "mesh.enabled=true", "mesh.gateway.enabled=false"), /loadgen\.baseUrl is required with the mesh on and its gateway off/);
  });

  it("lets NetworkPolicies through exactly what the console and the load generator call, and nothing more", () => {
    const objects = render("console.enabled=true", "loadgen.enabled=true", "networkPolicies.enabled=true");
    type Peer = { podSelector?: { matchLabels: Record<string, string> } };
    type Rule = { from?: Peer[]; to?: Peer[]; ports?: { port: number }[] };
    const policy = (name: string) => find(objects, "NetworkPolicy", name)!.spec as { ingress?: Rule[]; egress?: Rule[] };
    const peers = (rules: Rule[] | undefined, side: "from" | "to") => new Set((rules ?? []).flatMap((rule) => (rule[side] ?? []).map((peer) => peer.podSelector?.matchLabels["app.kubernetes.io/name"])).filter(Boolean));
    const services = Object.keys((parse(readFileSync(resolve(CHART, "values.yaml"), "utf8")) as { services: Record<string, unknown> }).services);
    for (const service of services) {
      const callers = peers(policy(`meshwork-${service}`).ingress, "from");
      assert.ok(callers.has("console"), `${service} admits the console's server (no gateway in front of it)`);
      assert.equal(callers.has("loadgen"), ["identity", "orders", "presence"].includes(service), `${service} admits the load generator only if a journey calls it`);
    }
    assert.deepEqual([...peers(policy("meshwork-loadgen").egress, "to")].sort(), ["identity", "orders", "presence"]);
    assert.deepEqual([...peers(policy("meshwork-console").egress, "to")].sort(), [...services].sort());
    assert.equal(policy("meshwork-loadgen").ingress, undefined, "nothing calls the load generator");
    // loadgen.baseUrl: its port, wherever it points (the scheme's when the URL names none).
    for (const [url, port] of [["https://shop.example.com", 443], ["http://edge.example:8080", 8080]] as const) {
      const egress = (find(render("loadgen.enabled=true", "networkPolicies.enabled=true", `loadgen.baseUrl=${url}`), "NetworkPolicy", "meshwork-loadgen")!.spec as { egress: Rule[] }).egress;
      assert.deepEqual(egress.at(-1), { ports: [{ port, protocol: "TCP" }] }, url);
    }
    // With the gateway in front, the console's server calls nothing and only the gateway reaches it.
    const meshed = render("console.enabled=true", "networkPolicies.enabled=true", "mesh.enabled=true");
    const consolePolicy = find(meshed, "NetworkPolicy", "meshwork-console")!.spec as { ingress: Rule[]; egress: Rule[] };
    assert.deepEqual(consolePolicy.ingress.map((rule) => rule.from?.[0]?.podSelector?.matchLabels), [{ "gateway.networking.k8s.io/gateway-name": "meshwork-gateway" }]);
    assert.equal(peers(consolePolicy.egress, "to").size, 0);
    assert.equal(peers(find(meshed, "NetworkPolicy", "meshwork-identity")!.spec!["ingress"] as Rule[], "from").has("console"), false);
  });

  it("admits the console's server where the gateway would be, when the mesh runs without one", () => {
    const objects = render("console.enabled=true", "mesh.enabled=true", "mesh.gateway.enabled=false");
    const rules = find(objects, "AuthorizationPolicy", "meshwork-identity")!.spec!["rules"] as { from?: { source: { principals?: string[]; requestPrincipals?: string[] } }[] }[];
    const edge = rules.filter((rule) => rule.from?.[0]?.source.principals?.includes("cluster.local/ns/meshwork/sa/meshwork-console"));
    assert.equal(edge.length, 2, "public paths, and the others with a token");
    assert.deepEqual(edge[1]!.from![0]!.source.requestPrincipals, ["meshwork-identity/*"]);
  });

  it("rejects unknown keys under the new sections", () => {
    assert.throws(() => render("monitoring.notAKey=true"));
    assert.throws(() => render("loadgen.notAKey=true"));
  });
});

// CORS in a deployment: each environment's values name the allowed browser origins once, and the
// chart hands them to every service (CORS_ALLOWED_ORIGINS) and to the gateway's HTTPRoutes (the
// Gateway API CORS filter), with the header and method lists the services themselves answer with.
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseAllDocuments } from "yaml";
import { CORS_ALLOWED_HEADERS, CORS_ALLOWED_METHODS, CORS_EXPOSED_HEADERS, CORS_MAX_AGE_SECONDS } from "@meshwork/platform";

const root = resolve(import.meta.dirname, "../..");
const chartDir = join(root, "charts/meshwork");

interface K8sObject {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: { rules?: { filters?: { type: string; cors?: Record<string, unknown> }[] }[] };
}

function render(valuesFile: string): K8sObject[] {
  const helm = existsSync(join(root, ".tools/bin/helm")) ? join(root, ".tools/bin/helm") : "helm";
  const out = execFileSync(helm, ["template", "meshwork", chartDir, "--namespace", "meshwork", "--kube-version", "1.35.0", "-f", join(chartDir, valuesFile)], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  return parseAllDocuments(out)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((object): object is K8sObject => object !== null);
}

const serviceOrigins = (objects: K8sObject[]) =>
  objects.filter((object) => object.kind === "ConfigMap" && object.data?.["RPC_PORT"]).map((object) => [object.metadata.name, object.data!["CORS_ALLOWED_ORIGINS"]]);
const routeCors = (objects: K8sObject[]) =>
  objects.filter((object) => object.kind === "HTTPRoute").map((route) => route.spec?.rules?.flatMap((rule) => rule.filters ?? []).find((filter) => filter.type === "CORS")?.cors);

describe("CORS per environment", function () {
  this.timeout(60_000);

  it("prod allows no browser origin, in the services or at the gateway", () => {
    const objects = render("values-prod.yaml");
    const origins = serviceOrigins(objects);
    assert.ok(origins.length >= 6, "a ConfigMap per service");
    for (const [name, value] of origins) assert.equal(value, "", `${name}: CORS_ALLOWED_ORIGINS`);
    const routes = routeCors(objects);
    assert.ok(routes.length >= 6, "an HTTPRoute per service");
    assert.deepEqual(routes.filter(Boolean), [], "no CORS filter on any HTTPRoute");
  });

  it("dev allows its localhost origins in every service and on every route, with the platform's lists", () => {
    const objects = render("values-dev.yaml");
    for (const [name, value] of serviceOrigins(objects)) assert.equal(value, "http://localhost:5173,http://localhost:3000", `${name}: CORS_ALLOWED_ORIGINS`);
    for (const cors of routeCors(objects)) {
      assert.deepEqual(cors, {
        allowOrigins: ["http://localhost:5173", "http://localhost:3000"],
        allowMethods: CORS_ALLOWED_METHODS,
        allowHeaders: CORS_ALLOWED_HEADERS,
        exposeHeaders: CORS_EXPOSED_HEADERS,
        maxAge: CORS_MAX_AGE_SECONDS,
      });
    }
  });

  it("routes no reflection or health path through the gateway: they are per workload", () => {
    for (const route of render("values-dev.yaml").filter((object) => object.kind === "HTTPRoute")) {
      assert.doesNotMatch(JSON.stringify(route.spec), /grpc\.(reflection|health)\./, route.metadata.name);
    }
  });
});

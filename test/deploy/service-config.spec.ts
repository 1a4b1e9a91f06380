// The chart's ConfigMaps must be configuration the services accept: render the dev values, then
// start each service's real entrypoint with exactly that environment and --check-config.
import { strict as assert } from "node:assert";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseAllDocuments } from "yaml";
import { SERVICES } from "../../scripts/lib/system.ts";

const root = resolve(import.meta.dirname, "../..");

interface ConfigMap { kind: string; metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }; data?: Record<string, string> }

describe("chart configuration accepted by the services", function () {
  this.timeout(60_000);
  // The services' own ConfigMaps (labelled with a service's name): not hooks such as the helm
  // test's script, nor the gateway's infrastructure parameters.
  const configMaps = render().filter((o) => o.kind === "ConfigMap" && o.metadata.labels?.["app.kubernetes.io/name"] !== undefined && !o.metadata.annotations?.["helm.sh/hook"]);

  it("renders one ConfigMap per service", function () {
    assert.deepEqual(configMaps.map((c) => c.metadata.name).sort(), SERVICES.map((service) => `meshwork-${service}`).sort());
  });

  for (const service of SERVICES) {
    it(`${service} passes --check-config with the rendered environment`, function () {
      const config = configMaps.find((c) => c.metadata.name === `meshwork-${service}`);
      assert.ok(config?.data, `no ConfigMap for ${service}`);
      const env: Record<string, string> = {
        PATH: process.env["PATH"] ?? "",
        ...config.data,
        DATA_DIR: join(root, ".data", "chart-check"),
        DATABASE_URL: `postgres://${service}:secret@postgresql.meshwork-infra.svc.cluster.local:5432/${service}?sslmode=disable`,
        NATS_USER: "meshwork",
        NATS_PASSWORD: "secret",
        ...(service === "identity" ? { MESHWORK_ADMIN_PASSWORD: "a-long-admin-password" } : {}),
      };
      const run = spawnSync(process.execPath, [
        "--import", "@meshwork/platform/telemetry-register.ts", `services/${service}/src/main.ts`, "--check-config",
      ], { cwd: root, env, encoding: "utf8", timeout: 30_000 });
      assert.equal(run.status, 0, `${service} --check-config failed:\n${run.stdout}\n${run.stderr}`);
    });
  }
});

function render(): ConfigMap[] {
  const helm = existsSync(join(root, ".tools/bin/helm")) ? join(root, ".tools/bin/helm") : "helm";
  const out = execFileSync(helm, [
    "template", "meshwork", join(root, "charts/meshwork"), "--namespace", "meshwork", "--kube-version", "1.35.0",
    "-f", join(root, "charts/meshwork/values-dev.yaml"),
  ], { encoding: "utf8" });
  return parseAllDocuments(out).map((d) => d.toJS() as ConfigMap | null).filter((o): o is ConfigMap => o !== null);
}

// What the production render must hold for every service (issue: deployment, "done when"). It
// reads the checked-in render of values-prod.yaml, which chart-check proves is current.
import { strict as assert } from "node:assert";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseAllDocuments } from "yaml";
import { SERVICES } from "../../scripts/lib/system.ts";

interface K8sObject {
  kind: string;
  metadata: { name: string };
  spec?: Record<string, unknown>;
}
interface Container {
  name: string;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean; capabilities?: { drop?: string[] } };
  startupProbe?: { grpc?: { port: number } };
  readinessProbe?: { grpc?: { port: number } };
  livenessProbe?: Record<string, unknown>;
  volumeMounts?: { mountPath: string; name: string }[];
}
interface PodSpec {
  serviceAccountName: string;
  automountServiceAccountToken?: boolean;
  securityContext?: { runAsNonRoot?: boolean; seccompProfile?: { type?: string } };
  containers: Container[];
  volumes?: { name: string; emptyDir?: object }[];
}

const rendered = resolve(import.meta.dirname, "../../charts/meshwork/examples/prod/rendered");
const services = SERVICES;

function load(dir: string): K8sObject[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return load(path);
    return parseAllDocuments(readFileSync(path, "utf8")).map((doc) => doc.toJS() as K8sObject).filter(Boolean);
  });
}

describe("the production render", () => {
  const objects = load(rendered);
  const named = (kind: string, name: string) => objects.find((object) => object.kind === kind && object.metadata.name === name);

  for (const service of services) {
    it(`gives ${service} probes, resources, a locked-down pod, a service account, HPA, PDB and NetworkPolicy`, () => {
      const deployment = objects.find((object) => object.kind === "Deployment" && object.metadata.name.endsWith(service));
      assert.ok(deployment, `a Deployment for ${service}`);
      const pod = (deployment.spec as { template: { spec: PodSpec } }).template.spec;
      const container = pod.containers.find((candidate) => candidate.name === service) ?? pod.containers[0]!;
      assert.ok(container.startupProbe?.grpc, "gRPC startup probe");
      assert.ok(container.readinessProbe?.grpc, "gRPC readiness probe");
      assert.ok(container.livenessProbe, "liveness probe");
      assert.ok(container.resources?.requests?.["cpu"] && container.resources.requests["memory"], "resource requests");
      assert.ok(container.resources?.limits?.["memory"], "a memory limit");
      assert.equal(pod.securityContext?.runAsNonRoot, true);
      assert.equal(pod.securityContext?.seccompProfile?.type, "RuntimeDefault");
      assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
      assert.equal(container.securityContext?.allowPrivilegeEscalation, false);
      assert.deepEqual(container.securityContext?.capabilities?.drop, ["ALL"]);
      assert.equal(pod.automountServiceAccountToken, false);
      const scratch = pod.volumes?.filter((volume) => volume.emptyDir) ?? [];
      assert.ok(scratch.some((volume) => container.volumeMounts?.some((mount) => mount.name === volume.name)), "an emptyDir for scratch");
      assert.equal(pod.serviceAccountName, `meshwork-${service}`);
      assert.ok(named("ServiceAccount", `meshwork-${service}`), "the ServiceAccount");
      assert.ok(objects.some((object) => object.kind === "HorizontalPodAutoscaler" && object.metadata.name.endsWith(service)), "an HPA");
      assert.ok(objects.some((object) => object.kind === "PodDisruptionBudget" && object.metadata.name.endsWith(service)), "a PDB");
      assert.ok(objects.some((object) => object.kind === "NetworkPolicy" && object.metadata.name.includes(service)), "a NetworkPolicy");
      const svc = objects.find((object) => object.kind === "Service" && object.metadata.name.endsWith(service));
      const port = (svc?.spec as { ports: { name: string; appProtocol?: string }[] }).ports.find((candidate) => candidate.name === "grpc");
      assert.equal(port?.appProtocol, "grpc");
    });
  }

  it("turns on STRICT mTLS and per-service authorization with the mesh", () => {
    const strict = objects.find((object) => object.kind === "PeerAuthentication" && (object.spec as { mtls?: { mode?: string } }).mtls?.mode === "STRICT" && !(object.spec as { selector?: unknown }).selector);
    assert.ok(strict, "a namespace-wide STRICT PeerAuthentication");
    for (const service of services) {
      assert.ok(
        objects.some((object) => object.kind === "AuthorizationPolicy" && object.metadata.name.includes(service) && (object.spec as { action?: string }).action !== "DENY"),
        `an AuthorizationPolicy for ${service}`,
      );
      assert.ok(objects.some((object) => object.kind === "RequestAuthentication" && object.metadata.name.includes(service)), `a RequestAuthentication for ${service}`);
    }
    assert.ok(objects.some((object) => object.kind === "AuthorizationPolicy" && Object.keys(object.spec ?? {}).length === 0), "allow-nothing by default");
  });
});

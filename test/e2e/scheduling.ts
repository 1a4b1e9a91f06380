// make e2e's scheduling step: what one real node cannot show, on kwok's fake nodes beside it.
// The real kube-scheduler, disruption, ReplicaSet and HPA controllers and metrics-server act on
// the chart's production objects (values-prod.yaml: HPAs, PDBs, topology spread); kwok only
// plays the nodes' part (reports the pods Running and Ready, serves their resource metrics).
// No container runs on a fake node and no traffic goes to one.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { ApiException, PatchStrategy, type V1Deployment, type V1Pod, type V2HorizontalPodAutoscaler } from "@kubernetes/client-node";
import { Cluster, eventually } from "./kube.ts";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");
export const SCHEDULING = "meshwork-e2e-scheduling";
const RELEASE = "meshwork";
const CHART = path.join(ROOT, "charts/meshwork");
const PROD_VALUES = path.join(CHART, "values-prod.yaml");
/** kwok manages only nodes with this annotation; their taint keeps every other pod off them. */
const FAKE = "kwok.x-k8s.io/node";
/** The replicas each Deployment starts with (its HPA's minReplicas): one per zone. */
const REPLICAS = 3;
/** The Deployment the scale-out check loads, and the CPU its pods are made to report, in multiples of their request. */
const LOADED = "identity";
const LOAD_FACTOR = 2.5;
/**
 * Three zones, uneven: zone a has two large nodes, b and c one small node each. The scheduler's
 * resource scoring favours the large nodes and hostname anti-affinity is satisfied by either
 * of them, so without the chart's zone constraint a Deployment's replicas pile into zone a.
 */
const FAKE_NODES = [
  { name: "kwok-a-0", zone: "fake-a", cpu: "16", memory: "64Gi" },
  { name: "kwok-a-1", zone: "fake-a", cpu: "16", memory: "64Gi" },
  { name: "kwok-b-0", zone: "fake-b", cpu: "4", memory: "16Gi" },
  { name: "kwok-c-0", zone: "fake-c", cpu: "4", memory: "16Gi" },
];
const ZONES = [...new Set(FAKE_NODES.map((node) => node.zone))];
const zoneOf = (nodeName: string | undefined) => FAKE_NODES.find((node) => node.name === nodeName)?.zone;

/** The message of a Status body (client-node hands it over as JSON text). */
function statusMessage(body: unknown): string {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  try {
    return (JSON.parse(text) as { message?: string }).message ?? text;
  } catch {
    return text;
  }
}

/** A CPU quantity ("100m", "1", "0.5") in millicores. */
const millicores = (quantity: string) => (quantity.endsWith("m") ? Number(quantity.slice(0, -1)) : Number(quantity) * 1000);

const active = (pod: V1Pod) => !pod.metadata?.deletionTimestamp;
const ready = (pod: V1Pod) => active(pod) && (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");

async function fakeNodes(cluster: Cluster) {
  for (const node of FAKE_NODES) {
    const resources = { cpu: node.cpu, memory: node.memory, pods: "110", "ephemeral-storage": "100Gi" };
    await cluster.core.createNode({
      body: {
        metadata: {
          name: node.name,
          annotations: {
            [FAKE]: "fake",
            // Where metrics-server finds this node's resource metrics on kwok's server.
            "metrics.k8s.io/resource-metrics-path": `/metrics/nodes/${node.name}/metrics/resource`,
          },
          labels: { "kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", type: "kwok", "topology.kubernetes.io/zone": node.zone },
        },
        spec: { taints: [{ key: FAKE, value: "fake", effect: "NoSchedule" }] },
        status: { allocatable: resources, capacity: resources },
      },
    });
  }
  await eventually("kwok to make the fake nodes Ready", 60_000, async () => {
    const nodes = (await cluster.core.listNode({ labelSelector: "type=kwok" })).items;
    return nodes.length === FAKE_NODES.length && nodes.every((n) => (n.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True")) ? nodes : undefined;
  });
}

async function setCordoned(cluster: Cluster, unschedulable: boolean) {
  for (const node of FAKE_NODES) {
    await cluster.objects.patch({ apiVersion: "v1", kind: "Node", metadata: { name: node.name }, spec: { unschedulable } }, undefined, undefined, undefined, undefined, PatchStrategy.MergePatch);
  }
}

const podsOf = async (cluster: Cluster, service: string) =>
  (await cluster.core.listNamespacedPod({ namespace: SCHEDULING, labelSelector: `app.kubernetes.io/name=${service}` })).items.filter(active);

/** Every Deployment at `replicas(service)` replicas, all Ready on fake nodes; returns the pods by service. */
async function settled(cluster: Cluster, services: string[], replicas: (service: string) => number, timeoutMs = 90_000) {
  return eventually(`every Deployment in ${SCHEDULING} at its replica count, all Ready`, timeoutMs, async () => {
    const deployments = (await cluster.apps.listNamespacedDeployment({ namespace: SCHEDULING })).items;
    const byService = new Map<string, V1Pod[]>();
    for (const service of services) {
      const deployment = deployments.find((d: V1Deployment) => d.metadata?.labels?.["app.kubernetes.io/name"] === service);
      if (deployment?.spec?.replicas !== replicas(service) || deployment.status?.availableReplicas !== replicas(service)) return undefined;
      const pods = await podsOf(cluster, service);
      if (pods.length !== replicas(service) || !pods.every(ready)) return undefined;
      byService.set(service, pods);
    }
    return byService;
  });
}

/** Each Deployment's pods per zone; throws unless every zone has one and no zone has two more than another. */
function assertSpread(byService: Map<string, V1Pod[]>): string {
  const lines: string[] = [];
  for (const [service, pods] of byService) {
    const perZone = Object.fromEntries(ZONES.map((zone) => [zone, pods.filter((pod) => zoneOf(pod.spec?.nodeName) === zone).length]));
    assert.ok(pods.every((pod) => zoneOf(pod.spec?.nodeName)), `${service} has pods off the fake nodes: ${pods.map((p) => p.spec?.nodeName).join(", ")}`);
    const counts = Object.values(perZone);
    assert.ok(Math.min(...counts) >= 1 && Math.max(...counts) - Math.min(...counts) <= 1, `${service}'s ${pods.length} pods are not spread over the zones: ${JSON.stringify(perZone)} (nodes ${pods.map((p) => p.spec?.nodeName).join(", ")})`);
    lines.push(`${service} ${counts.join("/")}`);
  }
  return lines.join(", ");
}

/** Removes the step's release, namespace, fake nodes and kwok controller (also an earlier run's). */
export async function removeScheduling(cluster: Cluster) {
  const releases = await cluster.helm("list", "-n", SCHEDULING, "-q").catch(() => "");
  if (releases.split("\n").includes(RELEASE)) await cluster.helm("uninstall", RELEASE, "-n", SCHEDULING, "--wait");
  await cluster.core.deleteNamespace({ name: SCHEDULING }).catch(() => undefined);
  await eventually(`namespace ${SCHEDULING} to be gone`, 120_000, () => cluster.core.readNamespace({ name: SCHEDULING }).then(() => undefined, () => true));
  await run(path.join(ROOT, "scripts/cluster.sh"), ["kwok-down"]);
}

/**
 * Installs the chart with production values onto the fake nodes and checks, in turn: every
 * Deployment spread over the three zones; an HPA scaling out on the CPU its pods report, the new
 * replicas spread over the nodes and zones; a drain honouring the PDBs.
 */
export async function schedulingChecks(cluster: Cluster, services: string[]): Promise<string> {
  await removeScheduling(cluster);
  await run(path.join(ROOT, "scripts/cluster.sh"), ["kwok"], { maxBuffer: 16 * 1024 * 1024 });
  try {
    await fakeNodes(cluster);
    await cluster.apply(`apiVersion: v1
kind: Namespace
metadata: { name: ${SCHEDULING}, labels: { app.kubernetes.io/part-of: meshwork } }
`);
    cluster.ownNamespaces.add(SCHEDULING);
    // Production values (HPAs, PDBs, spreadAcrossNodes), placed on the fake nodes. The mesh and
    // the network policies are beside the point here; the operator Secrets prod names are never
    // read, since no container starts.
    await cluster.helm(
      "install", RELEASE, CHART, "-n", SCHEDULING, "-f", PROD_VALUES,
      "--set", "mesh.enabled=false", "--set", "networkPolicies.enabled=false",
      "--set", "nodeSelector.type=kwok",
      "--set", `tolerations[0].key=${FAKE}`, "--set", "tolerations[0].operator=Exists", "--set", "tolerations[0].effect=NoSchedule",
      ...services.flatMap((service) => ["--set", `services.${service}.autoscaling.minReplicas=${REPLICAS}`]),
    );

    const started = performance.now();
    const seconds = () => `${((performance.now() - started) / 1000).toFixed(0)} s`;

    // (a) Spreading: the HPAs raise each Deployment to its minimum; the scheduler spreads them.
    const spread = assertSpread(await settled(cluster, services, () => REPLICAS));
    const spreadAt = seconds();

    // (b) Scale-out: the loaded service's pods report more CPU than their HPA's target (kwok's
    // usage annotation; metrics-server scrapes it from kwok as from a kubelet). First the HPA
    // must read the idle figure and hold, so the scale-out below is the load's doing.
    const hpaOf = async () =>
      (await cluster.autoscaling.listNamespacedHorizontalPodAutoscaler({ namespace: SCHEDULING, labelSelector: `app.kubernetes.io/name=${LOADED}` })).items[0] as V2HorizontalPodAutoscaler;
    const cpu = (hpa: V2HorizontalPodAutoscaler) => hpa.status?.currentMetrics?.find((m) => m.resource?.name === "cpu")?.resource?.current.averageUtilization;
    const idle = await eventually(`the ${LOADED} HPA to read its pods' CPU`, 90_000, async () => {
      const hpa = await hpaOf();
      return cpu(hpa) !== undefined ? hpa : undefined;
    });
    const target = idle.spec!.metrics![0]!.resource!.target.averageUtilization!;
    assert.ok(cpu(idle)! < target && idle.status?.desiredReplicas === REPLICAS, `idle: ${cpu(idle)}% of target ${target}%, desired ${idle.status?.desiredReplicas}`);
    const loadedPods = await podsOf(cluster, LOADED);
    const usage = `${Math.round(millicores(loadedPods[0]!.spec!.containers[0]!.resources!.requests!["cpu"]!) * LOAD_FACTOR)}m`;
    for (const pod of loadedPods) {
      await cluster.objects.patch(
        { apiVersion: "v1", kind: "Pod", metadata: { name: pod.metadata!.name!, namespace: SCHEDULING, annotations: { "kwok.x-k8s.io/usage-cpu": usage } } },
        undefined, undefined, undefined, undefined, PatchStrategy.MergePatch,
      );
    }
    const loaded = await eventually(`the ${LOADED} HPA to scale out`, 120_000, async () => {
      const hpa = await hpaOf();
      return (hpa.status?.desiredReplicas ?? 0) > REPLICAS ? hpa : undefined;
    });
    const scaledTo = loaded.status!.desiredReplicas!;
    assert.ok(cpu(loaded)! > target, `scaled out at ${cpu(loaded)}% of target ${target}%`);
    const replicas = (service: string) => (service === LOADED ? scaledTo : REPLICAS);
    const scaled = await settled(cluster, services, replicas);
    const scaledSpread = assertSpread(new Map([[LOADED, scaled.get(LOADED)!]]));
    const nodes = new Set(scaled.get(LOADED)!.map((pod) => pod.spec!.nodeName));
    assert.equal(nodes.size, Math.min(scaledTo, FAKE_NODES.length), `${LOADED}'s ${scaledTo} replicas on ${[...nodes].join(", ")}`);
    const scaledAt = seconds();

    // (c) A drain: every fake node cordoned, then each pod evicted through the Eviction API, as
    // `kubectl drain` does. The PDB (minAvailable 1) allows evictions until one pod is left and
    // refuses the last with 429, since the replacements cannot be scheduled anywhere.
    type Budget = { metadata?: { generation?: number; labels?: Record<string, string> }; status?: { observedGeneration?: number; currentHealthy?: number } };
    const budgets = async () => (await cluster.objects.list("policy/v1", "PodDisruptionBudget", SCHEDULING)).items as Budget[];
    const named = (await budgets()).map((b) => b.metadata!.labels!["app.kubernetes.io/name"]!).sort();
    assert.deepEqual(named, [...services].sort(), "a PodDisruptionBudget per Deployment");
    await eventually("every PDB to count its Deployment's pods healthy", 60_000, async () => {
      const all = await budgets();
      return all.every((b) => (b.status?.observedGeneration ?? 0) >= (b.metadata?.generation ?? 1) && b.status?.currentHealthy === replicas(b.metadata!.labels!["app.kubernetes.io/name"]!)) ? all : undefined;
    });
    await setCordoned(cluster, true);
    let refusal = "";
    for (const service of services) {
      let evicted = 0;
      let refused: string | undefined;
      for (const pod of await podsOf(cluster, service)) {
        try {
          await cluster.core.createNamespacedPodEviction({
            name: pod.metadata!.name!,
            namespace: SCHEDULING,
            body: { apiVersion: "policy/v1", kind: "Eviction", metadata: { name: pod.metadata!.name!, namespace: SCHEDULING } },
          });
          evicted++;
        } catch (error) {
          if (!(error instanceof ApiException) || error.code !== 429) throw error;
          refused = statusMessage(error.body);
        }
      }
      assert.equal(evicted, replicas(service) - 1, `${service}: ${evicted} of ${replicas(service)} evictions allowed; the PDB (minAvailable 1) allows ${replicas(service) - 1}`);
      assert.ok(refused, `${service}: no eviction refused`);
      assert.match(refused, /disruption budget/, `${service}: the refusal does not name the PDB: ${refused}`);
      refusal = refused;
    }
    // The evicted pods' replacements wait, unschedulable, while the nodes are cordoned.
    const evictions = services.reduce((sum, service) => sum + replicas(service) - 1, 0);
    await eventually("the replacements to be Pending, unschedulable", 60_000, async () => {
      const pods = (await cluster.core.listNamespacedPod({ namespace: SCHEDULING })).items.filter(active);
      const pending = pods.filter((pod) => (pod.status?.conditions ?? []).some((c) => c.type === "PodScheduled" && c.status === "False" && c.reason === "Unschedulable"));
      return pending.length === evictions ? pending : undefined;
    });
    // Uncordoned (one node after another, as after maintenance), every Deployment is whole again.
    await setCordoned(cluster, false);
    await settled(cluster, services, replicas);

    return (
      `${services.length} Deployments x ${REPLICAS} replicas over zones ${ZONES.join("/")} (${spread}) [${spreadAt}]; ` +
      `${LOADED} HPA idle at ${cpu(idle)}%, its pods made to report ${usage}: ${cpu(loaded)}% (target ${target}%): ${REPLICAS} -> ${scaledTo} replicas on ${nodes.size} nodes, zones ${scaledSpread.replace(`${LOADED} `, "")} [${scaledAt}]; ` +
      `drain: per Deployment all evictions but the last allowed, the last refused 429 ("${refusal}"), ${evictions} replacements Pending until uncordon, then all whole [${seconds()}]`
    );
  } catch (error) {
    // Placement is what a failure here is about; the cleanup below removes the pods.
    const pods = (await cluster.core.listNamespacedPod({ namespace: SCHEDULING }).catch(() => ({ items: [] as V1Pod[] }))).items;
    const placement = pods.map((pod) => `${pod.metadata!.name} ${pod.status?.phase}${active(pod) ? "" : " (terminating)"} on ${pod.spec?.nodeName ?? "-"} (${zoneOf(pod.spec?.nodeName) ?? "-"})`);
    throw new Error(`${(error as Error).message}\n${placement.join("\n")}`, { cause: error });
  } finally {
    await removeScheduling(cluster);
  }
}

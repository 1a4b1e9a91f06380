// make e2e: Meshwork on the real single-node cluster of `make cluster-up`, every step driven
// through @kubernetes/client-node (helm for install/upgrade/test/rollback/uninstall only).
// Each step prints PASS or FAIL with its reason; the last line is `e2e: N passed, M failed`.
//
// Traffic goes only to loopback and to Services the run itself created (Cluster.serviceAddress):
// the host reaches cluster IPs through kube-proxy's rules, and the node's guard rule keeps pod
// traffic inside this machine.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { createClient, ConnectError, Code } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { KubernetesObject, V1Deployment, V2HorizontalPodAutoscaler } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { PresenceService } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import { retryRefusedStreams } from "@meshwork/platform";
import { loadServices } from "../../scripts/lib/services.ts";
import { Cluster, eventually, sleep } from "./kube.ts";
import { removeScheduling, schedulingChecks, SCHEDULING } from "./scheduling.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const STATE = path.join(ROOT, ".data/cluster");
const NAMESPACE = "meshwork";
const INFRA = "meshwork-infra";
const SWITCH = "meshwork-e2e-switch";
const MESH = "meshwork-e2e-mesh";
const RELEASE = "meshwork";
const CHART = path.join(ROOT, "charts/meshwork");
const DEV_VALUES = path.join(CHART, "values-dev.yaml");
const PROD_VALUES = path.join(CHART, "values-prod.yaml");
/** Every service of the manifest (the `meshwork` field of each services/<name>/package.json). */
const MANIFEST = loadServices();
const SERVICES = MANIFEST.map((service) => service.name);
/** A service's RPC port: the manifest's, which the chart's values are generated from. */
const rpcPort = (name: string) => MANIFEST.find((service) => service.name === name)!.rpcPort;
/** values-dev.yaml's credentials (k8s/postgres and k8s/local/nats.yaml use the same). */
const ADMIN = { email: "admin@meshwork.local", password: "admin-dev-password" };
const NATS_AUTH = { user: "meshwork", pass: "nats-dev-password" };
const UPGRADE_TAG = "e2e-upgrade";
/** A node label no node has: the mesh step's release pods stay Pending (no Envoy to inject here). */
const HELD_BACK = "meshwork-e2e/held-back";
const run = promisify(execFile);

const cluster = new Cluster(path.join(STATE, "kubeconfig"));
const results: { name: string; ok: boolean; detail: string; ms: number }[] = [];

async function step(name: string, body: () => Promise<string | void>, diagnoseNamespace = NAMESPACE): Promise<boolean> {
  const started = performance.now();
  try {
    const detail = (await body()) ?? "";
    const ms = Math.round(performance.now() - started);
    results.push({ name, ok: true, detail, ms });
    console.log(`PASS ${name} (${(ms / 1000).toFixed(1)} s)${detail ? `: ${detail}` : ""}`);
    return true;
  } catch (error) {
    const ms = Math.round(performance.now() - started);
    const message = error instanceof Error ? error.message : String(error);
    results.push({ name, ok: false, detail: message, ms });
    console.log(`FAIL ${name} (${(ms / 1000).toFixed(1)} s): ${message}`);
    console.log((await cluster.diagnose(diagnoseNamespace).catch((e: Error) => `(no diagnosis: ${e.message})`)).replace(/^/gm, "    "));
    return false;
  }
}

// --- the system's own clients, over the Services' cluster IPs -------------------------------------------

// Like every Meshwork client (the platform's createServiceClient), these send a call again when a
// pod shutting down refused its HTTP/2 stream unprocessed (REFUSED_STREAM: its GOAWAY crossed the
// call); nothing else is retried, so any other failure during the upgrade fails the run.
let resent = 0;
const countResent = () => void resent++;

async function identityClient() {
  const ip = await cluster.serviceAddress(NAMESPACE, "identity");
  return createClient(IdentityService, createGrpcTransport({ baseUrl: `http://${ip}:${rpcPort("identity")}`, interceptors: [retryRefusedStreams(3, countResent)] }));
}

async function presenceClient(token: string) {
  const ip = await cluster.serviceAddress(NAMESPACE, "presence");
  return createClient(
    PresenceService,
    createGrpcTransport({
      baseUrl: `http://${ip}:${rpcPort("presence")}`,
      interceptors: [retryRefusedStreams(3, countResent), (next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))],
    }),
  );
}

async function nats(): Promise<NatsConnection> {
  const ip = await cluster.serviceAddress(INFRA, "nats");
  return connect({ servers: `${ip}:4222`, ...NATS_AUTH, reconnect: false });
}

async function psql(database: string, query: string): Promise<number> {
  const out = await cluster.exec(INFRA, "postgresql-0", "postgresql", ["psql", "-U", "postgres", "-d", database, "-tAc", query]);
  return Number(out.trim());
}

/** What the IDENTITY stream holds, and what presence and audit made of it. */
async function eventCounts() {
  const connection = await nats();
  try {
    const jsm = await jetstreamManager(connection);
    const info = await jsm.streams.info("IDENTITY", { subjects_filter: "identity.>" });
    const subjects = info.state.subjects ?? {};
    // Every durable consumer of IDENTITY (presence's projection, audit's, any later one).
    let pending = 0;
    for (const consumer of await jsm.consumers.list("IDENTITY").next()) pending += consumer.num_pending + consumer.num_ack_pending;
    return {
      streamMessages: info.state.messages,
      signedIn: subjects["identity.v1.user.signed_in"] ?? 0,
      signedOut: subjects["identity.v1.user.signed_out"] ?? 0,
      presenceSessions: await psql("presence", "select count(*) from online_sessions"),
      auditRows: await psql("audit", "select count(*) from audit_events where stream = 'IDENTITY'"),
      pending,
    };
  } finally {
    await connection.close();
  }
}

/** Waits until both consumers have caught up, then asserts every event reached both projections exactly once. */
async function assertNoEventLost(): Promise<string> {
  const counts = await eventually("presence and audit to catch up with the IDENTITY stream", 90_000, async () => {
    const c = await eventCounts();
    return c.pending === 0 && c.presenceSessions === c.signedIn - c.signedOut && c.auditRows === c.streamMessages ? c : undefined;
  }).catch(async (error: Error) => {
    const c = await eventCounts();
    throw new Error(`${error.message}; last counts ${JSON.stringify(c)}`);
  });
  assert.equal(counts.auditRows, counts.streamMessages, "audit rows = IDENTITY messages");
  assert.equal(counts.presenceSessions, counts.signedIn - counts.signedOut, "presence sessions = sign-ins - sign-outs");
  return `IDENTITY ${counts.streamMessages} messages = audit ${counts.auditRows} rows; ${counts.signedIn} sign-ins = presence ${counts.presenceSessions} sessions`;
}

/** Sign-ins from `workers` concurrent clients until stopped; every failure is kept, none retried. */
function signInLoad(users: { email: string; password: string }[], workers = 2) {
  let stopped = false;
  let succeeded = 0;
  const failures: string[] = [];
  const done = Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      const identity = await identityClient();
      for (let i = worker; !stopped; i += workers) {
        const user = users[i % users.length]!;
        try {
          const { accessToken } = await identity.signIn(user);
          if (!accessToken) throw new Error("no access token");
          succeeded++;
        } catch (error) {
          failures.push((error as Error).message);
        }
      }
    }),
  );
  return {
    get succeeded() {
      return succeeded;
    },
    failures,
    async stop() {
      stopped = true;
      await done;
    },
  };
}

async function createUsers(prefix: string, count: number) {
  const identity = await identityClient();
  const users = Array.from({ length: count }, (_, index) => ({ email: `${prefix}-${index}-${Date.now()}@meshwork.test`, password: `e2e-passphrase-${prefix}-${index}-x7` }));
  for (const user of users) await identity.signUp({ ...user, displayName: user.email.split("@")[0]! });
  return users;
}

const deploymentImages = (deployments: V1Deployment[]) => deployments.map((d) => d.spec!.template.spec!.containers[0]!.image!);

// --- infrastructure ------------------------------------------------------------------------------------

/** A hostPath PersistentVolume pre-bound to one StatefulSet claim, on a fresh directory. */
function hostVolume(name: string, claim: string, owner: number, size: string): string {
  const dir = path.join(STATE, "volumes", name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.chownSync(dir, owner, owner);
  return `apiVersion: v1
kind: PersistentVolume
metadata: { name: ${name}, labels: { app.kubernetes.io/part-of: meshwork } }
spec:
  capacity: { storage: ${size} }
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: local
  hostPath: { path: ${dir}, type: Directory }
  claimRef: { namespace: ${INFRA}, name: ${claim} }
`;
}

async function deleteAndWait(kind: string, apiVersion: string, namespace: string | undefined, name: string, timeoutMs = 120_000) {
  const header = { apiVersion, kind, metadata: { name, ...(namespace ? { namespace } : {}) } } as KubernetesObject;
  await cluster.objects.delete(header, undefined, undefined, 0, undefined, "Foreground").catch(() => undefined);
  await eventually(`${kind} ${name} to be gone`, timeoutMs, async () =>
    (await cluster.objects.read(header as never).then(() => false, () => true)) ? true : undefined,
  );
}

async function freshInfrastructure(): Promise<string> {
  // Fresh stores every run, so event counts start from zero.
  for (const [kind, apiVersion, ns, name] of [
    ["StatefulSet", "apps/v1", INFRA, "postgresql"],
    ["StatefulSet", "apps/v1", INFRA, "nats"],
    ["PersistentVolumeClaim", "v1", INFRA, "data-postgresql-0"],
    ["PersistentVolumeClaim", "v1", INFRA, "data-nats-0"],
    ["PersistentVolume", "v1", undefined, "meshwork-e2e-postgresql"],
    ["PersistentVolume", "v1", undefined, "meshwork-e2e-nats"],
  ] as const) {
    await deleteAndWait(kind, apiVersion, ns, name);
  }
  await cluster.apply(fs.readFileSync(path.join(ROOT, "k8s/namespaces.yaml"), "utf8"));
  cluster.ownNamespaces.add(NAMESPACE).add(INFRA);
  await cluster.apply(hostVolume("meshwork-e2e-postgresql", "data-postgresql-0", 999, "2Gi"));
  await cluster.apply(hostVolume("meshwork-e2e-nats", "data-nats-0", 1000, "1Gi"));
  // k8s/postgres names the official image, which cannot be pulled here: the same manifest runs
  // the local image (scripts/cluster-images.sh) instead.
  const postgres = fs.readFileSync(path.join(ROOT, "k8s/postgres/postgres.yaml"), "utf8").replace(/image: docker\.io\/library\/postgres:\S+/, "image: localhost/meshwork/postgres:15");
  await cluster.apply(postgres);
  await cluster.apply(fs.readFileSync(path.join(ROOT, "k8s/local/nats.yaml"), "utf8"));
  await cluster.podsReady(INFRA, "app.kubernetes.io/name=postgresql", 180_000);
  await cluster.podsReady(INFRA, "app.kubernetes.io/name=nats", 120_000);
  const databases = await eventually("one database per service", 60_000, async () => {
    const list = await cluster.exec(INFRA, "postgresql-0", "postgresql", ["psql", "-U", "postgres", "-tAc", "select string_agg(datname, ',' order by datname) from pg_database where not datistemplate"]);
    const names = list.trim().split(",");
    return SERVICES.every((service) => names.includes(service)) ? list : undefined;
  });
  return `PostgreSQL with databases ${databases.trim()}; NATS JetStream Ready`;
}

async function uninstallLeftovers() {
  const releases = await cluster.helm("list", "-n", NAMESPACE, "-q");
  if (releases.split("\n").includes(RELEASE)) await cluster.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "120s");
  // What an uninstall keeps on purpose, and what an earlier run's istiod left (a KEEP_CLUSTER=1 rerun).
  await run(path.join(ROOT, "scripts/cluster.sh"), ["istiod-down"]);
  await cluster.core.deleteCollectionNamespacedSecret({ namespace: NAMESPACE, labelSelector: `app.kubernetes.io/instance=${RELEASE}` }).catch(() => undefined);
  await cluster.core.deleteCollectionNamespacedConfigMap({ namespace: NAMESPACE, labelSelector: "istio.io/config=true" }).catch(() => undefined);
  await removeScheduling(cluster);
  for (const namespace of [SWITCH, MESH]) {
    const left = await cluster.helm("list", "-n", namespace, "-q").catch(() => "");
    if (left.split("\n").includes(RELEASE)) await cluster.helm("uninstall", RELEASE, "-n", namespace, "--wait");
    await deleteAndWait("Namespace", "v1", undefined, namespace);
  }
}

// --- the run ---------------------------------------------------------------------------------------------

async function main() {
  const installArgs = ["-n", NAMESPACE, "-f", DEV_VALUES, "--set", "mesh.enabled=false", "--timeout", "5m"];
  let users: { email: string; password: string }[] = [];
  let installedRevision = 0;

  const ready = await step("cluster reachable, node Ready, images imported", async () => {
    const nodes = (await cluster.core.listNode()).items;
    const node = nodes.find((n) => (n.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True"));
    assert.ok(node, `no Ready node among ${nodes.map((n) => n.metadata?.name).join(", ")}`);
    await run(path.join(ROOT, "scripts/cluster-images.sh"), ["services"]);
    // The upgrade's "new image tag": the same images under a second tag.
    for (const service of SERVICES) {
      await run(path.join(ROOT, "scripts/cluster-images.sh"), ["tag", `docker.io/meshwork/${service}:dev`, `docker.io/meshwork/${service}:${UPGRADE_TAG}`]);
    }
    await uninstallLeftovers();
    return `node ${node.metadata!.name} (${node.status!.nodeInfo!.kubeletVersion}, ${node.status!.nodeInfo!.containerRuntimeVersion})`;
  });
  if (!ready) return;

  if (!(await step("k8s/ prerequisites: namespaces, PostgreSQL, NATS JetStream", freshInfrastructure, INFRA))) return;

  await step("Pod Security: namespaces labelled, a privileged pod refused", async () => {
    const ns = await cluster.core.readNamespace({ name: NAMESPACE });
    assert.equal(ns.metadata?.labels?.["pod-security.kubernetes.io/enforce"], "baseline");
    const infra = await cluster.core.readNamespace({ name: INFRA });
    assert.equal(infra.metadata?.labels?.["pod-security.kubernetes.io/enforce"], "restricted");
    const privileged = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "e2e-privileged", namespace: NAMESPACE },
      spec: { containers: [{ name: "c", image: "localhost/meshwork/pause:3.10", securityContext: { privileged: true } }] },
    };
    await assert.rejects(cluster.objects.create(privileged, undefined, "All"), /violates PodSecurity[^:]*baseline/);
    return "meshwork enforces baseline (warns restricted), meshwork-infra enforces restricted";
  });

  // Pods start in any order. The issue's case: presence waited for the IDENTITY stream, which
  // only identity creates, failed its probes and was restarted. So every service but IDENTITY's
  // producers is installed on a fresh NATS, and each must become Ready with that stream missing.
  const identityProducers = MANIFEST.filter((service) => service.streams.includes("IDENTITY"));
  const withoutIdentity = MANIFEST.filter((service) => !identityProducers.includes(service));
  const identityConsumers = withoutIdentity.filter((service) => service.consumes.includes("IDENTITY") || service.consumes.includes("*"));
  await step(`start order: ${withoutIdentity.map((s) => s.name).join(", ")} installed before IDENTITY exists, every one Ready`, async () => {
    assert.ok(identityProducers.length > 0 && identityConsumers.length > 0, "the manifest has no producer or no consumer of IDENTITY");
    const producersOff = identityProducers.flatMap((service) => ["--set", `services.${service.name}.enabled=false`]);
    await cluster.helm("install", RELEASE, CHART, ...installArgs, ...producersOff);
    const deployments = await cluster.rolledOut(NAMESPACE, 180_000, withoutIdentity.length);
    const connection = await nats();
    try {
      const streams = await (await jetstreamManager(connection)).streams.names().next();
      assert.ok(!streams.includes("IDENTITY"), "IDENTITY exists although its producer is not installed");
    } finally {
      await connection.close();
    }
    return `${deployments.length} Deployments Available, ${identityConsumers.map((s) => s.name).join(", ")} among them consuming IDENTITY, which does not exist yet`;
  });

  const installed = await step("helm upgrade to every service (dev values, mesh off): every Deployment Available", async () => {
    await cluster.helm("upgrade", "--install", RELEASE, CHART, ...installArgs);
    const deployments = await cluster.rolledOut(NAMESPACE, 300_000, SERVICES.length);
    installedRevision = Number(JSON.parse(await cluster.helm("status", RELEASE, "-n", NAMESPACE, "-o", "json")).version);
    return `${deployments.length} Deployments Available (revision ${installedRevision}): ${deploymentImages(deployments).join(", ")}`;
  });
  if (!installed) return;

  await step("helm test", async () => {
    // The pod exits non-zero on any failed check (and is then kept, with its log, for diagnosis);
    // on success helm deletes it, so an uninstall leaves nothing of it behind.
    const out = await cluster.helm("test", RELEASE, "-n", NAMESPACE, "--timeout", "3m");
    assert.match(out, /TEST SUITE:\s+meshwork-smoke-test[\s\S]*Phase:\s+Succeeded/);
    return "meshwork-smoke-test Succeeded (sign-up/in via DNS, presence count rose, member refused)";
  });

  await step("sign-in flow from the test process (identity and presence over their Service IPs)", async () => {
    users = await createUsers("e2e", 4);
    const identity = await identityClient();
    const { accessToken } = await identity.signIn(users[0]!);
    const admin = (await identity.signIn(ADMIN)).accessToken;
    const presence = await presenceClient(admin);
    const online = await eventually(`${users[0]!.email} online in presence`, 30_000, async () => {
      const list = await presence.listOnlineUsers({});
      return list.users.some((user) => user.email === users[0]!.email) ? list.users.length : undefined;
    });
    const member = await presenceClient(accessToken);
    await assert.rejects(member.listOnlineUsers({}), (error: ConnectError) => error.code === Code.PermissionDenied);
    return `${users[0]!.email} signed in and listed among ${online} online users; a member is refused ListOnlineUsers`;
  });

  await step("metrics-server: pod metrics for every service", async () => {
    const found = await eventually("metrics for every service's pod", 120_000, async () => {
      const metrics = await cluster.metrics.getPodMetrics(NAMESPACE);
      const names = metrics.items.map((item) => item.metadata.name);
      return SERVICES.every((service) => names.some((name) => name.startsWith(`meshwork-${service}-`))) ? metrics.items.length : undefined;
    });
    return `${found} pods with CPU and memory from metrics.k8s.io`;
  });

  await step("rolling upgrade to a new image tag under continuous sign-ins: no failed request, no lost event", async () => {
    resent = 0;
    const load = signInLoad(users);
    await sleep(3_000);
    await cluster.helm(
      "upgrade", RELEASE, CHART, ...installArgs,
      "--set", `image.tag=${UPGRADE_TAG}`,
      // The HPAs come with the upgrade and must read CPU from metrics-server.
      "--set", "autoscaling.enabled=true",
      ...SERVICES.flatMap((service) => ["--set", `services.${service}.autoscaling.minReplicas=1`]),
    );
    const deployments = await cluster.rolledOut(NAMESPACE, 300_000, SERVICES.length);
    await sleep(3_000);
    await load.stop();
    assert.ok(deploymentImages(deployments).every((image) => image.endsWith(`:${UPGRADE_TAG}`)), `images: ${deploymentImages(deployments).join(", ")}`);
    assert.deepEqual(load.failures, [], `${load.failures.length} of ${load.succeeded + load.failures.length} sign-ins failed: ${[...new Set(load.failures)].join("; ")}`);
    assert.ok(load.succeeded > 0, "no sign-in ran during the upgrade");
    const hpas = await cluster.watchUntil<V2HorizontalPodAutoscaler>(
      `/apis/autoscaling/v2/namespaces/${NAMESPACE}/horizontalpodautoscalers`,
      (list) => list.length === SERVICES.length && list.every((hpa) => (hpa.status?.currentMetrics ?? []).some((metric) => metric.resource?.name === "cpu" && metric.resource.current.averageUtilization !== undefined)),
      "every HPA to read CPU utilization",
      120_000,
    );
    const counts = await assertNoEventLost();
    return `${load.succeeded} sign-ins, 0 failed (${resent} resent after a pod refused them unprocessed); ${hpas.length} HPAs read CPU; ${counts}`;
  });

  await step("presence pod deleted mid-stream: a new one catches up", async () => {
    const load = signInLoad(users);
    await sleep(2_000);
    const [pod] = (await cluster.core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: "app.kubernetes.io/name=presence" })).items;
    assert.ok(pod, "no presence pod");
    await cluster.core.deleteNamespacedPod({ namespace: NAMESPACE, name: pod.metadata!.name! });
    await cluster.watchUntil(
      `/api/v1/namespaces/${NAMESPACE}/pods`,
      (pods: { metadata?: { name?: string; deletionTimestamp?: Date }; status?: { conditions?: { type: string; status: string }[] } }[]) =>
        pods.some((p) => p.metadata?.name !== pod.metadata!.name && !p.metadata?.deletionTimestamp && (p.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True")) &&
        !pods.some((p) => p.metadata?.name === pod.metadata!.name),
      "a new presence pod Ready and the old one gone",
      120_000,
      { labelSelector: "app.kubernetes.io/name=presence" },
    );
    await sleep(2_000);
    await load.stop();
    assert.deepEqual(load.failures, [], "sign-ins failed while presence was replaced");
    return `${load.succeeded} sign-ins meanwhile; ${await assertNoEventLost()}`;
  });

  await step("helm rollback to the installed revision", async () => {
    await cluster.helm("rollback", RELEASE, String(installedRevision), "-n", NAMESPACE, "--wait", "--timeout", "5m");
    const deployments = await cluster.rolledOut(NAMESPACE, 300_000, SERVICES.length);
    assert.ok(deploymentImages(deployments).every((image) => image.endsWith(":dev")), `images after rollback: ${deploymentImages(deployments).join(", ")}`);
    const hpas = await cluster.autoscaling.listNamespacedHorizontalPodAutoscaler({ namespace: NAMESPACE });
    assert.equal(hpas.items.length, 0, "the rollback left HPAs behind");
    const identity = await identityClient();
    assert.ok((await identity.signIn(users[1]!)).accessToken, "sign-in after rollback");
    return `back on :dev, HPAs gone, sign-in works; ${await assertNoEventLost()}`;
  });

  await step("a release switches from prod values to dev values and back", async () => {
    // Pods are not the point here (prod pulls from ghcr.io): a quota of zero pods keeps them from
    // starting while the API server accepts or refuses every object of both value sets.
    await cluster.apply(`apiVersion: v1
kind: Namespace
metadata: { name: ${SWITCH}, labels: { app.kubernetes.io/part-of: meshwork } }
---
apiVersion: v1
kind: ResourceQuota
metadata: { name: no-pods, namespace: ${SWITCH} }
spec: { hard: { pods: "0" } }
`);
    cluster.ownNamespaces.add(SWITCH);
    const secret = (name: string, data: Record<string, string>) =>
      cluster.apply(`apiVersion: v1\nkind: Secret\nmetadata: { name: ${name}, namespace: ${SWITCH} }\nstringData:\n${Object.entries(data).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`).join("\n")}\n`);
    // The Secrets docs/deploy.md tells operators to create for prod.
    for (const service of SERVICES) await secret(`meshwork-${service}-database-credentials`, { DATABASE_URL: `postgres://${service}:x@postgresql.${INFRA}.svc.cluster.local:5432/${service}` });
    await secret("meshwork-identity-admin-credentials", { MESHWORK_ADMIN_PASSWORD: "switch-test-password" });
    await secret("meshwork-nats-credentials", { NATS_USER: "meshwork", NATS_PASSWORD: "x" });
    await secret("meshwork-gateway-tls", { "tls.crt": "", "tls.key": "" });
    const meshOff = ["--set", "mesh.enabled=false", "--set", "networkPolicies.enabled=false"];
    await cluster.helm("install", RELEASE, CHART, "-n", SWITCH, "-f", PROD_VALUES, ...meshOff);
    await cluster.helm("upgrade", RELEASE, CHART, "-n", SWITCH, "-f", DEV_VALUES, ...meshOff);
    await cluster.helm("upgrade", RELEASE, CHART, "-n", SWITCH, "-f", PROD_VALUES, ...meshOff);
    await cluster.helm("uninstall", RELEASE, "-n", SWITCH, "--wait");
    await cluster.core.deleteNamespace({ name: SWITCH });
    return "prod -> dev -> prod upgrades accepted (operator Secrets and chart Secrets have distinct names)";
  }, SWITCH);

  await step("helm uninstall leaves only what the chart keeps on purpose", async () => {
    // What the release itself marks helm.sh/resource-policy: keep (the signing keys, say).
    const manifest = parseAllDocuments(await cluster.helm("get", "manifest", RELEASE, "-n", NAMESPACE)).map((document) => document.toJS() as KubernetesObject | null);
    const kept = manifest
      .filter((object) => object?.metadata?.annotations?.["helm.sh/resource-policy"] === "keep")
      .map((object) => `${object!.kind}/${object!.metadata!.name}`)
      .sort();
    assert.ok(kept.includes("Secret/meshwork-identity-signing-keys"), `the signing keys are not kept: ${kept.join(", ")}`);
    await cluster.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "3m");
    await cluster.watchUntil(`/api/v1/namespaces/${NAMESPACE}/pods`, (pods) => pods.length === 0, "every pod gone", 120_000);
    const left: string[] = [];
    const names = (items: { metadata?: { name?: string } }[], kind: string, ignore: string[] = []) =>
      left.push(...items.map((item) => `${kind}/${item.metadata!.name}`).filter((name) => !ignore.includes(name)));
    names((await cluster.core.listNamespacedSecret({ namespace: NAMESPACE })).items, "Secret");
    // kube-root-ca.crt is the namespace's own (kube-controller-manager puts it in every namespace).
    names((await cluster.core.listNamespacedConfigMap({ namespace: NAMESPACE })).items, "ConfigMap", ["ConfigMap/kube-root-ca.crt"]);
    names((await cluster.core.listNamespacedServiceAccount({ namespace: NAMESPACE })).items, "ServiceAccount", ["ServiceAccount/default"]);
    names((await cluster.core.listNamespacedService({ namespace: NAMESPACE })).items, "Service");
    names((await cluster.apps.listNamespacedDeployment({ namespace: NAMESPACE })).items, "Deployment");
    names((await cluster.apps.listNamespacedReplicaSet({ namespace: NAMESPACE })).items, "ReplicaSet");
    names((await cluster.autoscaling.listNamespacedHorizontalPodAutoscaler({ namespace: NAMESPACE })).items, "HorizontalPodAutoscaler");
    names((await cluster.core.listNamespacedPersistentVolumeClaim({ namespace: NAMESPACE })).items, "PersistentVolumeClaim");
    names((await cluster.objects.list("policy/v1", "PodDisruptionBudget", NAMESPACE)).items, "PodDisruptionBudget");
    names((await cluster.objects.list("networking.k8s.io/v1", "NetworkPolicy", NAMESPACE)).items, "NetworkPolicy");
    assert.deepEqual(left.sort(), kept, "objects left after uninstall");
    return `left: ${left.join(", ")} (helm.sh/resource-policy: keep)`;
  });

  await step("scheduling on kwok's fake nodes: spread over zones, HPA scale-out across nodes, a drain against the PDBs", () => schedulingChecks(cluster, SERVICES), SCHEDULING);

  // Last: istiod writes its CA ConfigMaps into every namespace, which the uninstall check above
  // would count. Envoy cannot be had here, so the release's pods cannot run with the mesh on: a
  // nodeSelector no node matches holds them Pending, and what is proven is istiod's side of the
  // mesh. The gateway pod istiod deploys is scheduled on the real node: it gets an address, but
  // its proxy container never starts (imagePullPolicy Never, no Envoy image here).
  await step("mesh: istiod validates the chart with mesh.enabled=true; the gateway's Service is ClusterIP and Programmed; istioctl analyze live", async () => {
    await run(path.join(ROOT, "scripts/install-tools.sh"), ["istioctl"], { maxBuffer: 16 * 1024 * 1024 });
    await run(path.join(ROOT, "scripts/cluster.sh"), ["istiod"], { maxBuffer: 16 * 1024 * 1024 });
    try {
      // The labels of the real services namespace (k8s/namespaces.yaml): injection on, Pod Security.
      const servicesNamespace = parseAllDocuments(fs.readFileSync(path.join(ROOT, "k8s/namespaces.yaml"), "utf8"))
        .map((document) => document.toJS() as KubernetesObject)
        .find((object) => object.metadata?.name === NAMESPACE)!;
      await cluster.apply(`apiVersion: v1
kind: Namespace
metadata: { name: ${MESH}, labels: ${JSON.stringify(servicesNamespace.metadata!.labels)} }
`);
      cluster.ownNamespaces.add(MESH);
      // The webhook is live: istiod refuses an invalid policy.
      const invalid = { apiVersion: "security.istio.io/v1", kind: "AuthorizationPolicy", metadata: { name: "e2e-invalid", namespace: MESH }, spec: { action: "ALLOW", rules: [{ to: [{ operation: { methods: [""] } }] }] } };
      await assert.rejects(cluster.objects.create(invalid, undefined, "All"), /denied the request/);
      // Every Istio resource of the release passes that webhook (helm fails on any refusal).
      await cluster.helm("install", RELEASE, CHART, "-n", MESH, "-f", DEV_VALUES, "--set-string", `nodeSelector.${HELD_BACK}=true`, "--timeout", "2m");
      const released = parseAllDocuments(await cluster.helm("get", "manifest", RELEASE, "-n", MESH)).map((document) => document.toJS() as KubernetesObject | null);
      const istioObjects = released.filter((object) => object?.apiVersion?.includes("istio.io/")).length;
      const routes = released.filter((object) => object?.kind === "HTTPRoute" || object?.kind === "GRPCRoute").length;
      type Condition = { type: string; status: string; reason: string; message: string };
      type GatewayStatus = { conditions?: Condition[]; listeners?: { name: string; attachedRoutes: number; conditions: Condition[] }[] };
      // istiod deploys the gateway's Service from its kube-gateway template, with the type the
      // chart's parametersRef ConfigMap asks for (mesh.gateway.serviceType: ClusterIP in dev values).
      const service = await eventually("istiod to create the gateway's Service", 60_000, () =>
        cluster.core.readNamespacedService({ namespace: MESH, name: "meshwork-gateway-istio" }),
      );
      assert.equal(service.spec?.type, "ClusterIP", "mesh.gateway.serviceType: ClusterIP reached istiod");
      const status = await eventually("the Gateway's status to name the gateway's Service", 60_000, async () => {
        const gateway = (await cluster.objects.read({ apiVersion: "gateway.networking.k8s.io/v1", kind: "Gateway", metadata: { name: "meshwork-gateway", namespace: MESH } })) as KubernetesObject & { status?: GatewayStatus };
        const programmed = gateway.status?.conditions?.find((condition) => condition.type === "Programmed");
        return programmed && !/hostname .* not found/.test(programmed.message) ? gateway.status : undefined;
      });
      const condition = (type: string) => status!.conditions!.find((c) => c.type === type)!;
      assert.equal(condition("Accepted").status, "True", `Accepted: ${condition("Accepted").message}`);
      assert.equal(condition("ResolvedRefs").status, "True", `ResolvedRefs: ${condition("ResolvedRefs").message}`);
      const listeners = status!.listeners ?? [];
      assert.ok(listeners.length > 0 && listeners.every((l) => l.conditions.some((c) => c.type === "Programmed" && c.status === "True")), `listeners: ${JSON.stringify(listeners)}`);
      assert.equal(listeners.reduce((sum, l) => sum + l.attachedRoutes, 0), routes, "every route of the release attached to the gateway");
      // The gateway pod: scheduled, given an address, its proxy never started.
      const gatewayPod = await eventually("the gateway pod to get an address and its proxy to fail to start", 90_000, async () => {
        const [pod] = (await cluster.core.listNamespacedPod({ namespace: MESH, labelSelector: "gateway.networking.k8s.io/gateway-name=meshwork-gateway" })).items;
        const proxy = pod?.status?.containerStatuses?.find((c) => c.name === "istio-proxy");
        if (!pod?.status?.podIP || !proxy?.state?.waiting) return undefined;
        assert.equal(proxy.state.waiting.reason, "ErrImageNeverPull", `the gateway's proxy container: ${JSON.stringify(proxy.state)}`);
        return pod;
      });
      assert.ok(!(gatewayPod.status!.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True"), "the gateway pod is Ready without a proxy");
      // Its Service's only endpoint is that pod, not ready.
      const slices = (await cluster.objects.list("discovery.k8s.io/v1", "EndpointSlice", MESH, undefined, undefined, undefined, undefined, "kubernetes.io/service-name=meshwork-gateway-istio")).items as (KubernetesObject & { endpoints?: { addresses: string[]; conditions?: { ready?: boolean } }[] })[];
      const endpoints = slices.flatMap((slice) => slice.endpoints ?? []);
      assert.deepEqual(endpoints.map((e) => [e.addresses[0], e.conditions?.ready]), [[gatewayPod.status!.podIP, false]], "the gateway Service's endpoints");
      // istiod counts an endpoint of the gateway's Service as an instance whether it is ready or
      // not (ResolveGatewayInstances; docs/deploy.md), so the Gateway is Programmed once the pod
      // has its address. That is all Programmed=True means here: no Envoy ever serves it.
      const programmed = await eventually("the Gateway to be Programmed", 60_000, async () => {
        const gateway = (await cluster.objects.read({ apiVersion: "gateway.networking.k8s.io/v1", kind: "Gateway", metadata: { name: "meshwork-gateway", namespace: MESH } })) as KubernetesObject & { status?: GatewayStatus };
        const current = gateway.status?.conditions?.find((c) => c.type === "Programmed");
        return current?.status === "True" ? current : undefined;
      }).catch(async (error: Error) => {
        const gateway = (await cluster.objects.read({ apiVersion: "gateway.networking.k8s.io/v1", kind: "Gateway", metadata: { name: "meshwork-gateway", namespace: MESH } })) as KubernetesObject & { status?: GatewayStatus };
        throw new Error(`${error.message}: ${JSON.stringify(gateway.status?.conditions?.find((c) => c.type === "Programmed"))}`);
      });
      assert.match(programmed.message, /assigned to service\(s\) meshwork-gateway-istio\./, `Programmed: ${programmed.message}`);
      // istioctl analyze against the live API server: every finding must be one that the missing
      // data plane explains, nothing else.
      const analyzed = await run("istioctl", ["analyze", "--kubeconfig", path.join(STATE, "kubeconfig"), "-n", MESH, "-o", "json"], { env: process.env }).catch(
        (error: Error & { stdout?: string; stderr?: string }) => {
          throw new Error(`istioctl analyze: ${error.stdout ?? ""}${error.stderr ?? error.message}`);
        },
      );
      const findings = JSON.parse(analyzed.stdout || "[]") as { code: string; level: string; message: string }[];
      const explained: Record<string, RegExp> = {
        // No sidecar injector runs here (there is no Envoy to inject): the release's pods, Pending
        // on the held-back nodeSelector, have no istio-proxy container.
        IST0103: /^The pod meshwork-e2e-mesh\/meshwork-[a-z]+-[a-z0-9]+-[a-z0-9]+ is missing the Istio proxy\./,
      };
      const unexplained = findings.filter((finding) => !explained[finding.code]?.test(finding.message));
      assert.deepEqual(unexplained, [], "istioctl analyze findings a missing data plane does not explain");
      await cluster.helm("uninstall", RELEASE, "-n", MESH, "--wait");
      await deleteAndWait("Namespace", "v1", undefined, MESH);
      const codes = [...new Set(findings.map((finding) => finding.code))].join(", ");
      return `istiod refused an invalid policy and admitted the release's ${istioObjects} Istio resources; gateway Service ClusterIP, Gateway Accepted with ${routes} routes attached, Programmed=True ("${programmed.message}") with its pod at ${gatewayPod.status!.podIP} not Ready (proxy ErrImageNeverPull); istioctl analyze: ${findings.length} findings, all from the absent data plane (${codes || "none"})`;
    } finally {
      await run(path.join(ROOT, "scripts/cluster.sh"), ["istiod-down"]);
    }
  }, MESH);
}

const started = performance.now();
await main().catch((error: Error) => {
  results.push({ name: "e2e runner", ok: false, detail: error.stack ?? error.message, ms: 0 });
  console.log(`FAIL e2e runner: ${error.stack ?? error.message}`);
});
const passed = results.filter((r) => r.ok).length;
const failed = results.length - passed;
console.log(`(${((performance.now() - started) / 1000).toFixed(0)} s)`);
console.log(`e2e: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);

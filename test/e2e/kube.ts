import { execFile } from "node:child_process";
import { PassThrough } from "node:stream";
import { promisify } from "node:util";
import {
  AppsV1Api,
  AutoscalingV2Api,
  CoreV1Api,
  Exec,
  KubeConfig,
  KubernetesObjectApi,
  Metrics,
  PatchStrategy,
  Watch,
  type KubernetesObject,
  type V1Deployment,
  type V1Pod,
} from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";

const run = promisify(execFile);

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` every half second until it returns a value; throws with its last error on timeout. */
export async function eventually<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ""}`);
    await sleep(500);
  }
}

/** The cluster of `make cluster-up`, driven through @kubernetes/client-node (helm only for helm's own verbs). */
export class Cluster {
  readonly config = new KubeConfig();
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly autoscaling: AutoscalingV2Api;
  readonly objects: KubernetesObjectApi;
  readonly metrics: Metrics;
  private readonly watcher: Watch;
  private readonly kubeconfigPath: string;
  /** Namespaces this run created: the only places (besides loopback) tests may send traffic to. */
  readonly ownNamespaces = new Set<string>();

  constructor(kubeconfigPath: string) {
    this.kubeconfigPath = kubeconfigPath;
    this.config.loadFromFile(kubeconfigPath);
    this.core = this.config.makeApiClient(CoreV1Api);
    this.apps = this.config.makeApiClient(AppsV1Api);
    this.autoscaling = this.config.makeApiClient(AutoscalingV2Api);
    this.objects = KubernetesObjectApi.makeApiClient(this.config);
    this.metrics = new Metrics(this.config);
    this.watcher = new Watch(this.config);
  }

  /** Server-side apply of every document in a YAML text (what `kubectl apply --server-side` does). */
  async apply(yamlText: string): Promise<KubernetesObject[]> {
    const applied: KubernetesObject[] = [];
    // YAML 1.1, as kubectl reads it: `defaultMode: 0555` is octal there, decimal 555 in YAML 1.2.
    for (const document of parseAllDocuments(yamlText, { version: "1.1" })) {
      const object = document.toJS() as KubernetesObject | null;
      if (!object?.kind) continue;
      applied.push(await this.objects.patch(object, undefined, undefined, "meshwork-e2e", true, PatchStrategy.ServerSideApply));
    }
    return applied;
  }

  async helm(...args: string[]): Promise<string> {
    const { stdout } = await run("helm", args, {
      env: { ...process.env, KUBECONFIG: this.kubeconfigPath },
      maxBuffer: 64 * 1024 * 1024,
    }).catch((error: Error & { stderr?: string; stdout?: string }) => {
      throw new Error(`helm ${args.join(" ")} failed: ${error.stderr || error.message}`);
    });
    return stdout;
  }

  /**
   * Watches until `done(objects)` holds for the objects at `path` (a list endpoint); throws with
   * `describe()`'s text on timeout. Rollout status, readiness and deletion are all this.
   */
  async watchUntil<T extends KubernetesObject>(path: string, done: (objects: T[]) => boolean, what: string, timeoutMs: number, query: Record<string, string> = {}): Promise<T[]> {
    const objects = new Map<string, T>();
    const seed = (await this.listPath<T>(path, query)) ?? [];
    for (const object of seed) objects.set(object.metadata!.uid!, object);
    if (done([...objects.values()])) return [...objects.values()];
    return new Promise<T[]>((resolve, reject) => {
      let controller: AbortController | undefined;
      let finished = false;
      const finish = (error?: Error) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        controller?.abort();
        if (error) reject(error);
        else resolve([...objects.values()]);
      };
      const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      const start = () =>
        this.watcher
          .watch(
            path,
            query,
            (phase, object: T) => {
              if (phase === "DELETED") objects.delete(object.metadata!.uid!);
              else objects.set(object.metadata!.uid!, object);
              if (done([...objects.values()])) finish();
            },
            // The server closes watches now and then: resume (a re-list catches what was missed).
            () => {
              if (finished) return;
              this.listPath<T>(path, query).then((fresh) => {
                objects.clear();
                for (const object of fresh) objects.set(object.metadata!.uid!, object);
                if (done([...objects.values()])) finish();
                else start();
              }, finish);
            },
          )
          .then((c) => (controller = c), finish);
      start();
    });
  }

  /** Lists a collection path such as /apis/apps/v1/namespaces/<ns>/deployments. */
  private async listPath<T>(path: string, query: Record<string, string>): Promise<T[]> {
    const match = /^\/(?:api\/(v1)|apis\/([^/]+\/[^/]+))\/namespaces\/([^/]+)\/([^/]+)$/.exec(path);
    if (!match) throw new Error(`cannot list ${path}`);
    const [, core, group, namespace, plural] = match;
    const kinds: Record<string, string> = { pods: "Pod", deployments: "Deployment", horizontalpodautoscalers: "HorizontalPodAutoscaler", statefulsets: "StatefulSet" };
    const list = await this.objects.list(core ?? group!, kinds[plural!]!, namespace, undefined, undefined, undefined, undefined, query.labelSelector);
    return list.items as T[];
  }

  /** Every Deployment in the namespace rolled out: current generation observed, all replicas updated and available, no old ones left. */
  async rolledOut(namespace: string, timeoutMs = 180_000, expectCount?: number): Promise<V1Deployment[]> {
    return this.watchUntil<V1Deployment>(
      `/apis/apps/v1/namespaces/${namespace}/deployments`,
      (deployments) =>
        (expectCount === undefined || deployments.length === expectCount) &&
        deployments.length > 0 &&
        deployments.every((deployment) => {
          const want = deployment.spec?.replicas ?? 1;
          const status = deployment.status ?? {};
          return (
            (status.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 0) &&
            (status.updatedReplicas ?? 0) === want &&
            (status.availableReplicas ?? 0) === want &&
            (status.replicas ?? 0) === want &&
            (status.conditions ?? []).some((condition) => condition.type === "Available" && condition.status === "True")
          );
        }),
      `every Deployment in ${namespace} to roll out`,
      timeoutMs,
    );
  }

  async podsReady(namespace: string, labelSelector: string, timeoutMs = 120_000): Promise<V1Pod[]> {
    return this.watchUntil<V1Pod>(
      `/api/v1/namespaces/${namespace}/pods`,
      (pods) =>
        pods.length > 0 &&
        pods.every((pod) => !pod.metadata?.deletionTimestamp && (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True")),
      `pods ${labelSelector} in ${namespace} to be Ready`,
      timeoutMs,
      { labelSelector },
    );
  }

  /** Runs a command in a pod's container and returns its stdout (stderr joins the error on failure). */
  async exec(namespace: string, pod: string, container: string, command: string[]): Promise<string> {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    stdout.on("data", (chunk: Buffer) => out.push(chunk));
    stderr.on("data", (chunk: Buffer) => err.push(chunk));
    await new Promise<void>((resolve, reject) => {
      new Exec(this.config)
        .exec(namespace, pod, container, command, stdout, stderr, null, false, (status) => {
          if (status.status === "Success") resolve();
          else reject(new Error(`${command.join(" ")} in ${pod}: ${status.message ?? status.status} ${Buffer.concat(err).toString()}`));
        })
        .catch(reject);
    });
    return Buffer.concat(out).toString();
  }

  /** What a person would look at first when a step fails: pods that are not ready, their events and last log lines. */
  async diagnose(namespace: string): Promise<string> {
    const lines: string[] = [];
    const pods = (await this.core.listNamespacedPod({ namespace })).items;
    for (const pod of pods) {
      const ready = (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
      if (ready && pod.status?.phase === "Running") continue;
      lines.push(`pod ${pod.metadata!.name}: phase ${pod.status?.phase}, ready ${ready}`);
      for (const status of pod.status?.containerStatuses ?? []) {
        lines.push(`  ${status.name}: restarts ${status.restartCount}, state ${JSON.stringify(status.state)}`);
      }
      for (const container of pod.spec?.containers ?? []) {
        const log = await this.core
          .readNamespacedPodLog({ namespace, name: pod.metadata!.name!, container: container.name, tailLines: 20 })
          .catch((error: Error) => `(no log: ${error.message})`);
        lines.push(...String(log).split("\n").map((line) => `  | ${line}`));
      }
    }
    const events = (await this.core.listNamespacedEvent({ namespace })).items
      .filter((event) => event.type === "Warning")
      .slice(-15)
      .map((event) => `event ${event.involvedObject.kind}/${event.involvedObject.name}: ${event.reason} ${event.message}`);
    return [...lines, ...events].join("\n");
  }

  /**
   * The guard: an address tests may send traffic to is loopback, or the cluster IP of a Service
   * (or the IP of a pod) in a namespace this run created. Anything else throws.
   */
  async serviceAddress(namespace: string, name: string): Promise<string> {
    if (!this.ownNamespaces.has(namespace)) throw new Error(`guard: ${namespace} was not created by this run; no traffic goes there`);
    const service = await this.core.readNamespacedService({ namespace, name });
    const ip = service.spec?.clusterIP;
    if (!ip || !/^10\.96\.\d+\.\d+$/.test(ip)) throw new Error(`guard: Service ${namespace}/${name} has cluster IP ${ip}, outside this cluster's 10.96.0.0/16`);
    return ip;
  }
}

export function isLoopback(host: string): boolean {
  return /^127\.\d+\.\d+\.\d+$/.test(host) || host === "localhost" || host === "::1";
}

import type { Logger } from "./logger.ts";

/**
 * Background work a service hands the chassis from `setup`: the chassis starts it once the
 * service is ready and stops it (in reverse order) before consumers drain and NATS and the
 * database close, so a worker never outlives what it uses.
 */
export interface Worker {
  name: string;
  /** Begins the work and returns once it is running; a rejection marks the service not-ready. */
  start(): Promise<void> | void;
  /** Ends the work; resolves once nothing of it is left running. */
  stop(): Promise<void>;
  /** False while the work is failing; the service reports not-ready meanwhile. */
  isHealthy?(): boolean;
}

/**
 * A worker that runs `work` every `intervalMs`, one run at a time. A failing run is logged with
 * its error and makes the worker unhealthy until a run succeeds again.
 */
export function periodicWorker(options: { name: string; intervalMs: number; log: Logger; work: () => Promise<unknown> }): Worker {
  const log = options.log.child({ worker: options.name });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let healthy = true;
  const tick = () => {
    running ??= options
      .work()
      .then(
        () => void (healthy = true),
        (error: unknown) => {
          healthy = false;
          log.error({ err: errorText(error) }, `${options.name} failed`);
        },
      )
      .finally(() => (running = undefined));
  };
  return {
    name: options.name,
    start() {
      timer ??= setInterval(tick, options.intervalMs);
    },
    async stop() {
      clearInterval(timer);
      await running;
    },
    isHealthy: () => healthy,
  };
}

/** The workers of one service, started and stopped together. */
export class Workers {
  private readonly workers: readonly Worker[];
  private readonly log: Logger;
  private readonly failed = new Set<string>();
  private started: Worker[] = [];

  constructor(workers: readonly Worker[], log: Logger) {
    this.workers = workers;
    this.log = log;
  }

  /** Starts each worker in order; one that fails is logged and leaves the service not-ready. */
  async start(): Promise<void> {
    for (const worker of this.workers) {
      try {
        await worker.start();
        this.started.push(worker);
      } catch (error) {
        this.failed.add(worker.name);
        this.log.error({ err: errorText(error), worker: worker.name }, "worker failed to start");
      }
    }
  }

  /** Stops the started workers in reverse order; one that fails to stop does not keep the others running. */
  async stop(): Promise<void> {
    for (const worker of this.started.reverse()) {
      await worker.stop().catch((error: unknown) => this.log.error({ err: errorText(error), worker: worker.name }, "worker failed to stop"));
    }
    this.started = [];
  }

  isHealthy(): boolean {
    return this.failed.size === 0 && this.workers.every((worker) => worker.isHealthy?.() ?? true);
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

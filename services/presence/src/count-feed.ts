/** The projection's counts at one moment. */
export interface OnlineSummary {
  onlineUsers: number;
  onlineSessions: number;
  /** When the projection was read (ms since the epoch). */
  asOf: number;
}

/**
 * One reader of the projection per process, however many clients watch the count: while anyone
 * watches, it reads the counts every `pollMs` and tells each watcher when they changed. It reads
 * the database rather than listening to the projection consumer, because with several replicas
 * the event that changed the count may have been applied by another process.
 */
export class OnlineCountFeed {
  private readonly listeners = new Set<(summary: OnlineSummary) => void>();
  private timer: NodeJS.Timeout | undefined;
  private latest: OnlineSummary | undefined;
  private reading = false;
  private readonly read: (now: number) => Promise<Omit<OnlineSummary, "asOf">>;
  private readonly pollMs: number;

  constructor(read: (now: number) => Promise<Omit<OnlineSummary, "asOf">>, pollMs: number) {
    this.read = read;
    this.pollMs = pollMs;
  }

  /**
   * The summary now, then one whenever the counts change, and the latest one again whenever
   * `heartbeatMs` passes without a change (its `asOf` says how fresh the last read was). Ends when
   * `signal` aborts.
   */
  async *watch(signal: AbortSignal, heartbeatMs: number): AsyncGenerator<OnlineSummary> {
    const pending: OnlineSummary[] = [];
    let wake: (() => void) | undefined;
    const listener = (summary: OnlineSummary) => {
      pending.push(summary);
      wake?.();
    };
    const onAbort = () => wake?.();
    signal.addEventListener("abort", onAbort);
    this.subscribe(listener);
    try {
      yield (this.latest = await this.readNow());
      while (!signal.aborted) {
        if (pending.length === 0) {
          let timeout: NodeJS.Timeout | undefined;
          await new Promise<void>((resolve) => {
            wake = resolve;
            timeout = setTimeout(resolve, heartbeatMs);
          });
          clearTimeout(timeout);
          wake = undefined;
        }
        if (signal.aborted) break;
        // Only the newest change matters to a watcher that fell behind.
        const next = pending.length > 0 ? pending.at(-1)! : this.latest;
        pending.length = 0;
        if (next) yield next;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.unsubscribe(listener);
    }
  }

  private subscribe(listener: (summary: OnlineSummary) => void): void {
    this.listeners.add(listener);
    this.timer ??= setInterval(() => void this.poll(), this.pollMs);
  }

  private unsubscribe(listener: (summary: OnlineSummary) => void): void {
    this.listeners.delete(listener);
    if (this.listeners.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private async readNow(): Promise<OnlineSummary> {
    const now = Date.now();
    return { ...(await this.read(now)), asOf: now };
  }

  private async poll(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      const summary = await this.readNow();
      const changed = summary.onlineUsers !== this.latest?.onlineUsers || summary.onlineSessions !== this.latest?.onlineSessions;
      this.latest = summary;
      if (changed) for (const listener of this.listeners) listener(summary);
    } catch {
      // A failed read leaves `latest` as it was: its asOf grows old and watchers show the count
      // as stale, which is the truth.
    } finally {
      this.reading = false;
    }
  }
}

/**
 * Runs at most `limit` of the given tasks at a time; the others wait their turn in order. For
 * work that is bounded by the CPU and costs memory while it runs (identity's argon2id hashes:
 * 19 MiB each), running more at once than there are cores adds no throughput, only memory.
 * A service's business picks the limit; the queueing lives here.
 */
export class Bounded {
  private readonly limit: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
    this.limit = limit;
  }

  /** How many tasks run now and how many wait (for tests and metrics). */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await task();
    } finally {
      // The slot passes straight to the next waiter, so `running` never exceeds the limit.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}

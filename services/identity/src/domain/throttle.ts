/**
 * Counts recent sign-in failures per key (an account, an address) in a sliding window and says
 * when a key must wait. The failures live in a FailureLog: identity's database in a running
 * service (store.ts), so every replica sees the same counts and an attacker gets `limit` tries in
 * all, not `limit` per replica; memory in unit tests. The rules here are clock-injected, so they
 * are unit tested without sleeping.
 */
export interface FailureLog {
  /** When `key` failed after `after` (epoch ms), oldest first. */
  failuresAfter(key: string, after: number): Promise<number[]>;
  /** Records a failure of `key` at `at`, and forgets that key's failures at or before `forgetUpTo`. */
  record(key: string, at: number, forgetUpTo: number): Promise<void>;
  clear(key: string): Promise<void>;
}

export class FailureThrottle {
  private readonly log: FailureLog;
  private readonly scope: string;
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly now: () => number;

  /** `scope` keeps the keys of different throttles sharing one log apart ("account", "address"). */
  constructor(options: { log: FailureLog; scope: string; limit: number; windowMs: number; now?: () => number }) {
    this.log = options.log;
    this.scope = options.scope;
    this.limit = options.limit;
    this.windowMs = options.windowMs;
    this.now = options.now ?? Date.now;
  }

  /** Seconds the key must wait before it may try again, or 0. */
  async retryAfterSeconds(key: string): Promise<number> {
    return (await this.check(key)).retryAfterSeconds;
  }

  /**
   * The key's failures inside the window and the seconds it must wait (0: it may try). A caller
   * that saw no failures need not `reset` the key after a success: failures older than the window
   * never count again, and `recordFailure` forgets them.
   */
  async check(key: string): Promise<{ failures: number; retryAfterSeconds: number }> {
    const now = this.now();
    const recent = await this.log.failuresAfter(this.keyOf(key), now - this.windowMs);
    if (recent.length < this.limit) return { failures: recent.length, retryAfterSeconds: 0 };
    const unlockAt = recent[recent.length - this.limit]! + this.windowMs;
    return { failures: recent.length, retryAfterSeconds: Math.max(1, Math.ceil((unlockAt - now) / 1000)) };
  }

  async recordFailure(key: string): Promise<void> {
    const now = this.now();
    await this.log.record(this.keyOf(key), now, now - this.windowMs);
  }

  async reset(key: string): Promise<void> {
    await this.log.clear(this.keyOf(key));
  }

  private keyOf(key: string): string {
    return `${this.scope}:${key}`;
  }
}

/** A FailureLog in this process's memory: for unit tests only (replicas would not share it). */
export class MemoryFailureLog implements FailureLog {
  private readonly failures = new Map<string, number[]>();

  async failuresAfter(key: string, after: number): Promise<number[]> {
    return (this.failures.get(key) ?? []).filter((at) => at > after);
  }

  async record(key: string, at: number, forgetUpTo: number): Promise<void> {
    this.failures.set(key, [...(this.failures.get(key) ?? []).filter((time) => time > forgetUpTo), at]);
  }

  async clear(key: string): Promise<void> {
    this.failures.delete(key);
  }
}

import type { Journey } from "./journeys.ts";

/** What happened to each journey: latencies of the successes, the failures by message. */
export class Tally {
  private readonly latencies = new Map<Journey, number[]>();
  private readonly failures = new Map<Journey, Map<string, number>>();

  success(journey: Journey, ms: number): void {
    const list = this.latencies.get(journey) ?? [];
    list.push(ms);
    this.latencies.set(journey, list);
  }

  failure(journey: Journey, message: string): void {
    const byMessage = this.failures.get(journey) ?? new Map<string, number>();
    byMessage.set(message, (byMessage.get(message) ?? 0) + 1);
    this.failures.set(journey, byMessage);
  }

  get errors(): number {
    return [...this.failures.values()].reduce((sum, byMessage) => sum + [...byMessage.values()].reduce((a, b) => a + b, 0), 0);
  }

  get completed(): number {
    return [...this.latencies.values()].reduce((sum, list) => sum + list.length, 0);
  }

  /** The end-of-run table: per journey and in total, rate, errors and latency percentiles. */
  summary(journeys: readonly Journey[], seconds: number): string {
    const row = (name: string, latencies: number[], errors: number) => {
      const sorted = [...latencies].sort((a, b) => a - b);
      const q = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!.toFixed(1) : "-");
      return [name.padEnd(12), String(latencies.length + errors).padStart(7), ((latencies.length + errors) / seconds).toFixed(1).padStart(8), String(errors).padStart(7), q(0.5).padStart(9), q(0.95).padStart(9), q(0.99).padStart(9), (sorted.at(-1)?.toFixed(1) ?? "-").padStart(9)].join(" ");
    };
    const errorsOf = (journey: Journey) => [...(this.failures.get(journey)?.values() ?? [])].reduce((a, b) => a + b, 0);
    const lines = [
      `${"journey".padEnd(12)} ${"count".padStart(7)} ${"rate/s".padStart(8)} ${"errors".padStart(7)} ${"p50 ms".padStart(9)} ${"p95 ms".padStart(9)} ${"p99 ms".padStart(9)} ${"max ms".padStart(9)}`,
      ...journeys.filter((journey) => this.latencies.has(journey) || this.failures.has(journey)).map((journey) => row(journey, this.latencies.get(journey) ?? [], errorsOf(journey))),
      row("all", [...this.latencies.values()].flat(), this.errors),
    ];
    for (const [journey, byMessage] of this.failures) for (const [message, count] of byMessage) lines.push(`  ${journey}: ${count} x ${message}`);
    return lines.join("\n");
  }
}

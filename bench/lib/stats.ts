/** Small statistics for benchmark runs: nothing here asserts anything about speed. */

export interface Summary {
  min: number;
  median: number;
  max: number;
  /** Every run's value, in the order measured. */
  runs: number[];
}

export function summarize(values: number[]): Summary {
  const sorted = [...values].filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return { min: NaN, median: NaN, max: NaN, runs: values };
  return { min: sorted[0]!, median: quantile(sorted, 0.5), max: sorted.at(-1)!, runs: values };
}

/** Quantile of an ascending array, linear interpolation between closest ranks. */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const position = (sorted.length - 1) * q;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  return sorted[lower]! + (sorted[upper]! - sorted[lower]!) * (position - lower);
}

export function percentiles(values: number[]): { p50: number; p99: number; count: number } {
  const sorted = Float64Array.from(values).sort();
  const array = Array.from(sorted);
  return { p50: quantile(array, 0.5), p99: quantile(array, 0.99), count: array.length };
}

/** Rounds for display: 3 significant digits, at most 2 decimals for big numbers. */
export function fmt(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return "n/a";
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString("en-US");
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toPrecision(2);
}

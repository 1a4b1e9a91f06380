/**
 * The account-closure choreography as identity sees it: it starts the closure and then only
 * listens. No I/O here; closures.ts reads and writes the state.
 */
export type ClosureState = "PENDING" | "CLOSED" | "STUCK";

export interface ClosureView {
  state: ClosureState;
  requestedAt: number;
  reported: readonly string[];
}

/** The participants identity still waits for, in the order it expects them. */
export function awaiting(expected: readonly string[], reported: readonly string[]): string[] {
  const done = new Set(reported);
  return expected.filter((participant) => !done.has(participant));
}

/**
 * Where a closure goes after a participant's report: CLOSED once every expected participant has
 * reported (a stuck closure too: late is not lost), otherwise it stays where it was.
 */
export function afterReport(closure: ClosureView, expected: readonly string[]): ClosureState {
  if (closure.state === "CLOSED") return "CLOSED";
  return awaiting(expected, closure.reported).length === 0 ? "CLOSED" : closure.state;
}

/** A pending closure that has waited longer than the timeout is stuck: visible, and alerted on. */
export function isOverdue(closure: ClosureView, now: number, timeoutMs: number): boolean {
  return closure.state === "PENDING" && now - closure.requestedAt > timeoutMs;
}

/** The user whose data is erased once the account is closed: what stays is the id, nothing personal. */
export function erasedEmail(userId: string): string {
  return `closed-${userId}@erased.invalid`;
}

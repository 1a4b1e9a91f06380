/**
 * The checkout saga as a pure state machine: which step an order's state calls for, and where
 * each step's outcome takes it. No I/O here; the runner (saga-runner.ts) does the calls and commits
 * each transition with its event.
 *
 *   PENDING --charge ok--> PAYMENT_CHARGED --ship ok--> CONFIRMED
 *      |                        |
 *   declined              ship rejected
 *      v                        v
 *   CANCELLED <--refund ok-- REFUNDING
 */
export const ORDER_STATES = ["PENDING", "PAYMENT_CHARGED", "CONFIRMED", "REFUNDING", "CANCELLED"] as const;
export type OrderState = (typeof ORDER_STATES)[number];

export type Step = "charge" | "ship" | "refund";

/** What a step's call answered, as the saga sees it. */
export type StepOutcome =
  | { kind: "succeeded"; paymentId?: string; shipmentId?: string }
  /** A definitive no (declined card, unserviceable address): retrying will not change it. */
  | { kind: "rejected"; reason: string }
  /** Anything else (unreachable, timed out, internal): try again later. */
  | { kind: "failed"; error: string };

export interface SagaView {
  state: OrderState;
  paymentId: string | null;
  shipmentId: string | null;
  cancellationReason: string | null;
}

export type OrderEventKind = "confirmed" | "cancelled";

export type Advance =
  | { kind: "transition"; to: OrderState; paymentId: string | null; shipmentId: string | null; cancellationReason: string | null; emit?: OrderEventKind }
  | { kind: "retry"; reason: string };

export function isFinal(state: OrderState): boolean {
  return state === "CONFIRMED" || state === "CANCELLED";
}

/** The one step an unfinished order needs next, or undefined when it is finished. */
export function stepFor(state: OrderState): Step | undefined {
  switch (state) {
    case "PENDING":
      return "charge";
    case "PAYMENT_CHARGED":
      return "ship";
    case "REFUNDING":
      return "refund";
    default:
      return undefined;
  }
}

/**
 * The key every call of one step of one order carries. Derived, never random, so the call a
 * restarted runner repeats is the same call to payments and shipping, which answer it once.
 */
export function idempotencyKey(orderId: string, step: Step): string {
  return `order:${orderId}:${step}`;
}

/** Where `outcome` of the step `saga.state` calls for takes the saga. */
export function advance(saga: SagaView, outcome: StepOutcome): Advance {
  const step = stepFor(saga.state);
  if (!step) throw new Error(`order is ${saga.state}: no step to advance`);
  if (outcome.kind === "failed") return { kind: "retry", reason: outcome.error };
  const same = { paymentId: saga.paymentId, shipmentId: saga.shipmentId, cancellationReason: saga.cancellationReason };
  switch (step) {
    case "charge":
      if (outcome.kind === "rejected") return { kind: "transition", ...same, to: "CANCELLED", cancellationReason: outcome.reason, emit: "cancelled" };
      if (!outcome.paymentId) throw new Error("a successful charge names its payment");
      return { kind: "transition", ...same, to: "PAYMENT_CHARGED", paymentId: outcome.paymentId };
    case "ship":
      // No event: REFUNDING is on the way to CANCELLED, which is announced once the money is back.
      if (outcome.kind === "rejected") return { kind: "transition", ...same, to: "REFUNDING", cancellationReason: outcome.reason };
      if (!outcome.shipmentId) throw new Error("a successful shipment names itself");
      return { kind: "transition", ...same, to: "CONFIRMED", shipmentId: outcome.shipmentId, emit: "confirmed" };
    case "refund":
      // A refund is owed whatever payments says; a refusal is a bug to fix, then the retry succeeds.
      if (outcome.kind === "rejected") return { kind: "retry", reason: `refund refused: ${outcome.reason}` };
      return { kind: "transition", ...same, to: "CANCELLED", emit: "cancelled" };
  }
}

/** Why a withdrawn order is cancelled. */
export const ACCOUNT_CLOSED = "account closed";

/**
 * Where a withdrawn order (its account is closing) goes instead of its next step: an uncharged
 * order is cancelled at once, a charged one is refunded on the way to CANCELLED, and one already
 * being refunded carries on. Undefined when the saga's own step still applies.
 */
export function withdraw(saga: SagaView): Advance | undefined {
  const same = { paymentId: saga.paymentId, shipmentId: saga.shipmentId };
  switch (saga.state) {
    case "PENDING":
      return { kind: "transition", ...same, to: "CANCELLED", cancellationReason: ACCOUNT_CLOSED, emit: "cancelled" };
    case "PAYMENT_CHARGED":
      return { kind: "transition", ...same, to: "REFUNDING", cancellationReason: ACCOUNT_CLOSED };
    default:
      return undefined;
  }
}

/** Capped exponential backoff between tries of a failing step. */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
}

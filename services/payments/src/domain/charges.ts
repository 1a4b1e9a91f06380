import { DomainError, InvalidArgumentError } from "@meshwork/platform";
import { Code } from "@connectrpc/connect";

export interface ChargeInput {
  idempotencyKey: string;
  orderId: string;
  userId: string;
  amountCents: number;
  currency: string;
}

export type PaymentState = "CHARGED" | "REFUNDED";

export interface PaymentRecord {
  id: string;
  chargeKey: string;
  orderId: string;
  userId: string;
  amountCents: number;
  currency: string;
  state: PaymentState;
  chargedAt: number;
  refundKey: string | null;
  refundReason: string | null;
  refundedAt: number | null;
}

/** A definitive "no" from the payment network: the caller must not retry, it must compensate or give up. */
export class PaymentDeclinedError extends DomainError {
  constructor(reason: string) {
    super(Code.FailedPrecondition, `payment declined: ${reason}`);
  }
}

/** Why the (simulated) network declines this charge, or undefined when it accepts it. */
export function declineReason(input: Pick<ChargeInput, "amountCents">, declineAboveCents: number): string | undefined {
  if (input.amountCents > declineAboveCents) return `amount ${input.amountCents} exceeds the limit of ${declineAboveCents}`;
  return undefined;
}

/**
 * A retry must be the same request. Reusing a key for a different charge is a caller bug, and
 * answering the old payment would hide it.
 */
export function assertSameCharge(existing: PaymentRecord, input: ChargeInput): void {
  if (existing.orderId !== input.orderId || existing.amountCents !== input.amountCents || existing.currency !== input.currency) {
    throw new InvalidArgumentError("idempotency key already used for a different charge");
  }
}

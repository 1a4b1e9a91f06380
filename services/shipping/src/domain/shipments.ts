import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { DomainError, InvalidArgumentError } from "@meshwork/platform";

export interface Address {
  recipient: string;
  line1: string;
  city: string;
  postalCode: string;
  countryCode: string;
}

export interface ShipmentInput {
  idempotencyKey: string;
  orderId: string;
  userId: string;
  address: Address;
}

export interface ShipmentRecord {
  id: string;
  idempotencyKey: string;
  orderId: string;
  userId: string;
  address: Address;
  trackingNumber: string;
  createdAt: number;
}

/** A definitive "cannot ship there": retrying will not help, the order must be compensated. */
export class UnserviceableDestinationError extends DomainError {
  constructor(countryCode: string) {
    super(Code.FailedPrecondition, `destination not serviceable: shipping does not deliver to country ${countryCode}`);
  }
}

export function assertServiceable(countryCode: string, unserviceable: readonly string[]): void {
  if (unserviceable.includes(countryCode.toUpperCase())) throw new UnserviceableDestinationError(countryCode);
}

/** A retry must be the same request; a key reused for another order is a caller bug. */
export function assertSameShipment(existing: ShipmentRecord, input: ShipmentInput): void {
  if (existing.orderId !== input.orderId) throw new InvalidArgumentError("idempotency key already used for a different shipment");
}

export function newTrackingNumber(): string {
  return `MW${randomBytes(5).toString("hex").toUpperCase()}`;
}

import { InvalidArgumentError } from "@meshwork/platform";

export interface OrderItem {
  sku: string;
  quantity: number;
  unitPriceCents: number;
}

export interface ShippingAddress {
  recipient: string;
  line1: string;
  city: string;
  postalCode: string;
  countryCode: string;
}

export interface NewOrder {
  items: OrderItem[];
  currency: string;
  address: ShippingAddress;
}

/**
 * Answers an order's total; the total is computed, never taken from the caller. The contract
 * (orders.proto) already bounds every item, the item count, the currency and the address; what it
 * cannot say is that the total is positive and fits in an exact integer.
 */
export function validateOrder(order: NewOrder): { amountCents: number } {
  const amountCents = order.items.reduce((total, item) => total + item.quantity * item.unitPriceCents, 0);
  if (amountCents <= 0 || !Number.isSafeInteger(amountCents)) throw new InvalidArgumentError("the order total must be positive");
  return { amountCents };
}

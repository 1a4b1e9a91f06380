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

const MAX_ITEMS = 100;

/** Checks an order as placed and answers its total; the total is computed, never taken from the caller. */
export function validateOrder(order: NewOrder): { amountCents: number } {
  if (order.items.length === 0) throw new InvalidArgumentError("an order needs at least one item");
  if (order.items.length > MAX_ITEMS) throw new InvalidArgumentError(`an order holds at most ${MAX_ITEMS} items`);
  let amountCents = 0;
  for (const [index, item] of order.items.entries()) {
    if (item.sku.trim() === "") throw new InvalidArgumentError(`items[${index}].sku is required`);
    if (!Number.isSafeInteger(item.quantity) || item.quantity <= 0) throw new InvalidArgumentError(`items[${index}].quantity must be positive`);
    if (!Number.isSafeInteger(item.unitPriceCents) || item.unitPriceCents < 0) throw new InvalidArgumentError(`items[${index}].unit_price_cents must not be negative`);
    amountCents += item.quantity * item.unitPriceCents;
  }
  if (amountCents <= 0 || !Number.isSafeInteger(amountCents)) throw new InvalidArgumentError("the order total must be positive");
  if (!/^[A-Z]{3}$/.test(order.currency)) throw new InvalidArgumentError("currency must be an ISO 4217 code such as EUR");
  const { address } = order;
  const missing = Object.entries({ recipient: address.recipient, line1: address.line1, city: address.city, country_code: address.countryCode })
    .filter(([, value]) => value.trim() === "")
    .map(([name]) => `shipping_address.${name}`);
  if (missing.length > 0) throw new InvalidArgumentError(`missing required field${missing.length > 1 ? "s" : ""}: ${missing.join(", ")}`);
  if (!/^[A-Z]{2}$/.test(address.countryCode)) throw new InvalidArgumentError("shipping_address.country_code must be an ISO 3166-1 alpha-2 code such as DE");
  return { amountCents };
}

import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { OrderState, OrdersService } from "@meshwork/proto/meshwork/orders/v1/orders_pb.js";
import { PresenceService } from "@meshwork/proto/meshwork/presence/v2/presence_pb.js";

export const JOURNEYS = ["sign-up", "sign-in", "count", "place-order", "sign-out"] as const;
export type Journey = (typeof JOURNEYS)[number];

/** How often each journey is picked, relative to the others: mostly reading, some buying. */
export const DEFAULT_WEIGHTS: Record<Journey, number> = { "sign-up": 1, "sign-in": 3, count: 6, "place-order": 2, "sign-out": 1 };

export interface Clients {
  identity: Client<typeof IdentityService>;
  presence: Client<typeof PresenceService>;
  orders: Client<typeof OrdersService>;
}

export function clientsFor(transports: Record<"identity" | "presence" | "orders", Transport>): Clients {
  return {
    identity: createClient(IdentityService, transports.identity),
    presence: createClient(PresenceService, transports.presence),
    orders: createClient(OrdersService, transports.orders),
  };
}

/** One simulated person: an account, and a token while signed in. */
export interface VirtualUser {
  email: string;
  password: string;
  token?: string;
}

const auth = (user: VirtualUser) => ({ headers: { authorization: `Bearer ${user.token}` } });
const FINAL = new Set([OrderState.CONFIRMED, OrderState.CANCELLED]);

/**
 * Runs one journey for `user`. A journey that needs a signed-in user signs in first, and one that
 * needs an account signs up first, so any journey can be picked at any time. Throws on any
 * answer a real user would see as a failure.
 */
export async function runJourney(journey: Journey, user: VirtualUser, clients: Clients, options: { orderTimeoutMs: number; refundShare: number }): Promise<void> {
  switch (journey) {
    case "sign-up":
      await signUp(user, clients);
      return signIn(user, clients);
    case "sign-in":
      await ensureAccount(user, clients);
      return signIn(user, clients);
    case "count": {
      await ensureSignedIn(user, clients);
      await clients.presence.getPresenceSummary({}, auth(user));
      return;
    }
    case "place-order": {
      await ensureSignedIn(user, clients);
      const countryCode = Math.random() < options.refundShare ? "XX" : "GB";
      const placed = await clients.orders.placeOrder(
        {
          items: [{ sku: "mug", quantity: 1 + Math.floor(Math.random() * 3), unitPriceCents: 1250n }],
          currency: "EUR",
          shippingAddress: { recipient: "Load Test", line1: "1 Main St", city: "London", postalCode: "SW1A 1AA", countryCode },
        },
        auth(user),
      );
      // The journey ends when the saga does: confirmed, or refunded and cancelled for XX (shipping
      // cannot deliver there). Any other end is what the user would see as a failure.
      const expected = countryCode === "XX" ? OrderState.CANCELLED : OrderState.CONFIRMED;
      const deadline = Date.now() + options.orderTimeoutMs;
      let order = placed.order!;
      while (!FINAL.has(order.state)) {
        if (Date.now() > deadline) throw new Error(`order ${order.id} still ${OrderState[order.state]} after ${options.orderTimeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 100));
        order = (await clients.orders.getOrder({ id: order.id }, auth(user))).order!;
      }
      if (order.state !== expected) throw new Error(`order ${order.id} to ${countryCode} ended ${OrderState[order.state]}, not ${OrderState[expected]}`);
      return;
    }
    case "sign-out":
      await ensureSignedIn(user, clients);
      await clients.identity.signOut({}, auth(user));
      user.token = undefined;
      return;
  }
}

const accounts = new WeakSet<VirtualUser>();

async function signUp(user: VirtualUser, clients: Clients): Promise<void> {
  await clients.identity.signUp({ email: user.email, password: user.password, displayName: user.email.split("@")[0]! }).catch((error: unknown) => {
    // The account exists already (a second run against the same data): fine for a load test.
    if (ConnectError.from(error).code !== Code.AlreadyExists) throw error;
  });
  accounts.add(user);
}

async function ensureAccount(user: VirtualUser, clients: Clients): Promise<void> {
  if (!accounts.has(user)) await signUp(user, clients);
}

async function signIn(user: VirtualUser, clients: Clients): Promise<void> {
  user.token = (await clients.identity.signIn({ email: user.email, password: user.password })).accessToken;
}

async function ensureSignedIn(user: VirtualUser, clients: Clients): Promise<void> {
  await ensureAccount(user, clients);
  if (!user.token) await signIn(user, clients);
}

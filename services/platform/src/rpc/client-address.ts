import { createContextKey } from "@connectrpc/connect";

/** The caller's network address, for per-address throttling: `ctx.values.get(clientAddressKey)`. */
export const clientAddressKey = createContextKey<string>("unknown", { description: "client address" });

/**
 * Which address counts as the client's. Behind the mesh every connection comes from the local
 * Envoy sidecar (127.0.0.6), so the socket alone would put every client in one throttling bucket.
 * The ingress gateway appends the address it saw to X-Forwarded-For and sidecars append nothing,
 * so with `trustedHops` proxies in front (TRUSTED_PROXY_HOPS: 1 behind the Istio gateway) the
 * client is the entry that many places from the right. Entries further left came from the client
 * and are never trusted. A request with fewer entries did not come through those proxies (a call
 * from inside the mesh) and counts by its socket address.
 */
export function clientAddressOf(forwardedFor: string | undefined, socketAddress: string, trustedHops: number): string {
  if (trustedHops === 0 || !forwardedFor) return socketAddress;
  const hops = forwardedFor
    .split(",")
    .map((entry) => entry.trim())
    .filter(Boolean);
  return hops.length >= trustedHops ? hops[hops.length - trustedHops]! : socketAddress;
}

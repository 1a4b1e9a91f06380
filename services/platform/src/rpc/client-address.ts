import { createContextKey } from "@connectrpc/connect";

/** The caller's network address, for per-address throttling: `ctx.values.get(clientAddressKey)`. */
export const clientAddressKey = createContextKey<string>("unknown", { description: "client address" });

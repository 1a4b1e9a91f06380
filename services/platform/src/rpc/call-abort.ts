import type { HandlerContext } from "@connectrpc/connect";

/** Where a call's context keeps listeners for its abort without building a signal (direct-unary.ts). */
export const abortHooks = Symbol("meshwork call abort hooks");

export interface AbortHooks {
  readonly [abortHooks]: ((reason: unknown) => void)[];
}

/**
 * Runs `listener` once, with the reason, when the call's context is aborted: when the call ends
 * (an AbortError), fails (its error), passes its deadline or loses its caller. A context from the
 * direct path keeps the listener until then and builds no AbortController for it; connect-node's
 * contexts are listened to on their signal.
 */
export function onCallAbort(context: HandlerContext, listener: (reason: unknown) => void): void {
  const hooks = (context as Partial<AbortHooks>)[abortHooks];
  if (hooks) hooks.push(listener);
  else context.signal.addEventListener("abort", () => listener(context.signal.reason), { once: true });
}

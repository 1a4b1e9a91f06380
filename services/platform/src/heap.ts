/** How long after a service starts serving its start-up's work is over (module evaluation, migrations, the first key fetch, consumers attaching). */
export const START_UP_SETTLES_MS = 1_000;

type GarbageCollector = (options?: { type?: "major" | "minor"; execution?: "sync" | "async"; flavor?: "regular" | "last-resort" }) => void;

/**
 * Gives back the heap that start-up grew, once. Starting a service allocates a burst of
 * long-lived objects (the bundle's modules, descriptors, compiled queries), and V8 answers the
 * high survival rate by growing the young generation to its largest size (16 MiB of semi-spaces
 * for presence); an idle service never collects again, so that space stays resident. One
 * memory-reducing full collection (what V8 runs on a low-memory notification) shrinks it back to
 * its smallest and compacts the old generation: presence's idle RSS went from 114 to 97 MiB for
 * a 46 ms pause (docs/performance.md). Under load V8 grows the young generation again as the
 * allocation rate asks for it, so the throughput of a busy service is unchanged; a smaller fixed
 * maximum (--max-semi-space-size) would cost the RPC path instead (measured, same page).
 *
 * The collector is V8's `gc` extension, which the services' launchers expose from the start
 * (`--expose-gc`, HEAP_RELEASE_FLAG in scripts/lib/system.ts, with the Dockerfile and the Tiltfile).
 * Turning the flag on at run time instead (`v8.setFlagsFromString`) was measured to double the
 * event pipeline's CPU per event for the rest of the process's life (docs/performance.md), so
 * without the flag nothing is collected. The timer does not hold the process open.
 */
export function releaseStartUpHeap(delayMs = START_UP_SETTLES_MS): void {
  setTimeout(() => collectReducingMemory(), delayMs).unref();
}

/**
 * One full, memory-reducing garbage collection ("last resort": the young generation shrinks too);
 * false when the process was started without `--expose-gc`.
 */
export function collectReducingMemory(): boolean {
  const gc = (globalThis as { gc?: GarbageCollector }).gc;
  if (!gc) return false;
  gc({ type: "major", execution: "sync", flavor: "last-resort" });
  return true;
}

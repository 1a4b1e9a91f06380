import { writeSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * The one fault-injection seam. `MESHWORK_FAULTS` is a comma-separated list of faults, each
 * `name` or `name=argument`; tests use it to prove recovery and operators use it for chaos drills
 * (docs/operations.md lists each fault). Every fault is injected by platform code (the outbox
 * relay, the consumer runner, the RPC client), so no service carries code of its own for it.
 */
export const FAULTS = {
  "crash-before-publish": "the outbox relay kills the process after an event's commit, before publishing it",
  "crash-after-call": "the process is killed as soon as the named outgoing RPC (`Service/Method`) has answered, before the caller acts on it",
  "delay-call": "the named outgoing RPC (`Service/Method:milliseconds`) waits that long before it is sent",
  "reject-event": "every consumer's handler fails on the event with this CloudEvent id, so it is retried and then dead-lettered",
} as const;

export type FaultName = keyof typeof FAULTS;

export class Faults {
  private readonly active: ReadonlyMap<FaultName, readonly string[]>;

  constructor(active: ReadonlyMap<FaultName, readonly string[]> = new Map()) {
    this.active = active;
  }

  /** True when the fault is on (with any argument). */
  has(name: FaultName): boolean {
    return this.active.has(name);
  }

  /** The arguments given to a fault, one per occurrence in the list. */
  argumentsOf(name: FaultName): readonly string[] {
    return this.active.get(name) ?? [];
  }

  /** Kills the process at once when `name` is on (and, if given, `argument` is among its arguments). */
  crashIf(name: FaultName, what: string, argument?: string): void {
    if (!this.has(name) || (argument !== undefined && !this.argumentsOf(name).includes(argument))) return;
    // Written synchronously: the logger's buffer dies with the process.
    writeSync(2, `fault ${name}: killing the process ${what}\n`);
    process.kill(process.pid, "SIGKILL");
  }

  /** Fails with an error naming the fault when `name` is on with `argument`. */
  failIf(name: FaultName, argument: string, what: string): void {
    if (this.argumentsOf(name).includes(argument)) throw new FaultInjectedError(`fault ${name}: ${what}`);
  }

  /** Waits as long as `delay-call` asks for `target`, if at all. */
  async delayFor(target: string): Promise<void> {
    for (const argument of this.argumentsOf("delay-call")) {
      const [name, ms] = splitDelay(argument);
      if (name === target) await sleep(ms);
    }
  }
}

export class FaultInjectedError extends Error {
  override name = "FaultInjectedError";
}

/** Parses a MESHWORK_FAULTS value; an unknown fault or a malformed argument is an error, never ignored. */
export function parseFaults(value: string | undefined): Faults {
  const active = new Map<FaultName, string[]>();
  for (const entry of (value ?? "").split(",").map((part) => part.trim()).filter(Boolean)) {
    const separator = entry.indexOf("=");
    const name = separator === -1 ? entry : entry.slice(0, separator);
    const argument = separator === -1 ? "" : entry.slice(separator + 1);
    if (!isFaultName(name)) throw new Error(`unknown fault "${name}" (known: ${Object.keys(FAULTS).join(", ")})`);
    if (name !== "crash-before-publish" && argument === "") throw new Error(`fault "${name}" needs an argument: ${FAULTS[name]}`);
    if (name === "delay-call") splitDelay(argument);
    active.set(name, [...(active.get(name) ?? []), argument]);
  }
  return new Faults(active);
}

let current: Faults | undefined;

/** The faults of this process, parsed once from MESHWORK_FAULTS (config validation rejects bad values earlier). */
export function activeFaults(): Faults {
  return (current ??= parseFaults(process.env["MESHWORK_FAULTS"]));
}

function isFaultName(name: string): name is FaultName {
  return Object.hasOwn(FAULTS, name);
}

function splitDelay(argument: string): [string, number] {
  const separator = argument.lastIndexOf(":");
  const ms = Number(argument.slice(separator + 1));
  if (separator === -1 || !Number.isInteger(ms) || ms < 0) throw new Error(`fault "delay-call" wants Service/Method:milliseconds, got "${argument}"`);
  return [argument.slice(0, separator), ms];
}

import fs from "node:fs";
import { LocalSystem } from "../../scripts/lib/local-system.ts";
import type { ServiceName } from "../../scripts/lib/system.ts";

export const BENCH_ADMIN = { email: "admin@meshwork.bench", password: "a-benchmark-admin-passphrase" };

export interface BenchSystemOptions {
  services: ServiceName[];
  /** Run the services' esbuild bundles, as images do (default), or their .ts sources with type stripping (make dev). */
  bundled?: boolean;
  /** Environment for every service (on top of the defaults below). */
  commonEnv?: NodeJS.ProcessEnv;
  env?: Partial<Record<ServiceName, NodeJS.ProcessEnv>>;
}

/**
 * The real system for a benchmark, started like `make dev` and the integration tests
 * (scripts/lib/local-system.ts), but from each service's esbuild bundle as the images run it
 * (bench/run.ts builds the bundles first). Unlike the tests it keeps identity's production argon2
 * parameters and logs at warn level (log volume is not what we measure), and speaks Connect
 * over HTTP/2 like gRPC.
 */
export class BenchSystem extends LocalSystem {
  constructor(options: BenchSystemOptions) {
    super({
      ...options,
      bundled: options.bundled ?? true,
      tempPrefix: "meshwork-bench-",
      connectHttpVersion: "2",
      defaultEnv: { LOG_LEVEL: "warn", MESHWORK_ADMIN_EMAIL: BENCH_ADMIN.email, MESHWORK_ADMIN_PASSWORD: BENCH_ADMIN.password },
    });
  }
}

/** Resident set size (VmRSS) and its peak (VmHWM) of a process, in MiB, from /proc. */
export function memoryOf(pid: number): { rssMiB: number; hwmMiB: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"))?.[1] ?? NaN);
  return { rssMiB: kib("VmRSS") / 1024, hwmMiB: kib("VmHWM") / 1024 };
}

/** CPU time (user + system) a process has used so far, in ms, from /proc/<pid>/stat (10 ms ticks). */
export function cpuTimeMsOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may contain spaces; the fields after its closing parenthesis are fixed.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** USER_HZ: 100 on every Linux architecture Node supports. */
const CLOCK_TICKS_PER_SECOND = 100;

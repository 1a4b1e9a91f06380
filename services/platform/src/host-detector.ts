import { promises as fs } from "node:fs";
import { arch, hostname } from "node:os";
import type { ResourceDetector } from "@opentelemetry/resources";

/** Where Linux keeps the machine id (systemd's file, then D-Bus's), the files OpenTelemetry's own detector reads there. */
const MACHINE_ID_FILES = ["/etc/machine-id", "/var/lib/dbus/machine-id"];

/** Node's architecture names that OpenTelemetry's semantic conventions spell otherwise (`host.arch`). */
const SEMCONV_ARCH: Readonly<Record<string, string>> = { arm: "arm32", ppc: "ppc32", x64: "amd64" };

/**
 * `host.name`, `host.arch` and `host.id`, as `@opentelemetry/resources`' `hostDetector` reports
 * them on Linux, where services run (test/unit/host-detector.spec.ts compares the two). Not that
 * detector itself: its machine-id readers for macOS, BSD and Windows run commands through
 * `child_process`, and esbuild hoists that import to the top of a bundle, so every bundled service
 * loaded `child_process` (and `dgram`, which it requires) at start for what on Linux is a file
 * read: +0.25-0.47 MiB resident (docs/performance.md, "Sixth round: memory"). Where neither file
 * exists (macOS or Windows under `make dev`) `host.id` is left out.
 */
export const hostDetector: ResourceDetector = {
  detect: () => ({
    attributes: {
      "host.name": hostname(),
      "host.arch": SEMCONV_ARCH[arch()] ?? arch(),
      "host.id": machineId(),
    },
  }),
};

async function machineId(): Promise<string | undefined> {
  for (const file of MACHINE_ID_FILES) {
    const id = await fs.readFile(file, "utf8").then((text) => text.trim(), () => "");
    if (id) return id;
  }
  return undefined;
}

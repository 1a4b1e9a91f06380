import fs from "node:fs";
import path from "node:path";

/**
 * The services manifest: the `meshwork` field of each `services/<name>/package.json` is the one
 * place a service's ports, streams and peers are written. `make dev`, the test harness, the bench,
 * the access tables and `make generate` (chart values, Tilt, dev PostgreSQL) all read it here.
 */
export interface ServiceManifest {
  name: string;
  /** The one port for gRPC, gRPC-Web and Connect, and the admin port (health, metrics), in `make dev`. */
  rpcPort: number;
  adminPort: number;
  /**
   * The JetStream streams it produces to, and those it consumes. `"*"` in `consumes` stands for
   * every stream another service produces (audit keeps them all), so a new service's stream needs
   * no edit elsewhere; loadServices expands it.
   */
  streams: string[];
  consumes: string[];
  /** The services whose RPCs it calls; each is handed `<NAME>_URL`. */
  calls: string[];
}

export const ROOT = path.resolve(import.meta.dirname, "../..");

const EVERY_STREAM = "*";

/**
 * Every service (a folder under services/ whose package.json has a `meshwork` field), in start
 * order: the waves of startWaves, one after the other.
 */
export function loadServices(root = ROOT): ServiceManifest[] {
  const servicesDir = path.join(root, "services");
  const manifests: ServiceManifest[] = [];
  for (const folder of fs.readdirSync(servicesDir).sort()) {
    const file = path.join(servicesDir, folder, "package.json");
    if (!fs.existsSync(file)) continue;
    const entry = (JSON.parse(fs.readFileSync(file, "utf8")) as { meshwork?: Omit<ServiceManifest, "name"> }).meshwork;
    if (entry) manifests.push(checked({ name: folder, ...entry }, file));
  }
  for (const manifest of manifests) {
    if (!manifest.consumes.includes(EVERY_STREAM)) continue;
    const others = manifests.filter((other) => other !== manifest).flatMap((other) => other.streams);
    manifest.consumes = [...new Set([...manifest.consumes.filter((stream) => stream !== EVERY_STREAM), ...others])].sort();
  }
  return startWaves(manifests).flat();
}

/**
 * The services in waves: each wave's services consume only streams that earlier waves produce, so
 * every consumer attaches as it starts instead of polling for a stream that is not there yet (a
 * consumer that waits is ready, and its first events would come up to a poll interval late). A
 * cycle (identity awaits the reports of services that read identity's own stream) is broken by
 * starting next the producer whose streams the most remaining services read. Within a wave, by port.
 */
export function startWaves(manifests: ServiceManifest[]): ServiceManifest[][] {
  const waves: ServiceManifest[][] = [];
  const produced = new Set<string>();
  const producedBySomeone = new Set(manifests.flatMap((manifest) => manifest.streams));
  let remaining = [...manifests].sort((a, b) => a.rpcPort - b.rpcPort);
  while (remaining.length > 0) {
    let wave = remaining.filter((manifest) => manifest.consumes.every((stream) => produced.has(stream) || !producedBySomeone.has(stream)));
    if (wave.length === 0) {
      const readers = (manifest: ServiceManifest) => remaining.filter((other) => other !== manifest && other.consumes.some((stream) => manifest.streams.includes(stream))).length;
      wave = [remaining.reduce((best, manifest) => (readers(manifest) > readers(best) ? manifest : best))];
    }
    waves.push(wave);
    for (const manifest of wave) for (const stream of manifest.streams) produced.add(stream);
    remaining = remaining.filter((manifest) => !wave.includes(manifest));
  }
  return waves;
}

function checked(manifest: ServiceManifest, file: string): ServiceManifest {
  const port = (value: unknown) => Number.isInteger(value) && (value as number) > 0 && (value as number) < 65536;
  const names = (value: unknown) => Array.isArray(value) && value.every((item) => typeof item === "string");
  if (!/^[a-z][a-z0-9-]*$/.test(manifest.name) || !port(manifest.rpcPort) || !port(manifest.adminPort) || !names(manifest.streams) || !names(manifest.consumes) || !names(manifest.calls)) {
    throw new Error(`${file}: "meshwork" needs rpcPort, adminPort (ports), streams, consumes and calls (lists of names)`);
  }
  return manifest;
}

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
 * order: producers first, then consumers, each group by port. A consumer is ready only once the
 * streams it reads exist, so starting it after their producers keeps startup quick.
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
  return manifests.sort((a, b) => a.consumes.length - b.consumes.length || a.rpcPort - b.rpcPort);
}

function checked(manifest: ServiceManifest, file: string): ServiceManifest {
  const port = (value: unknown) => Number.isInteger(value) && (value as number) > 0 && (value as number) < 65536;
  const names = (value: unknown) => Array.isArray(value) && value.every((item) => typeof item === "string");
  if (!/^[a-z][a-z0-9-]*$/.test(manifest.name) || !port(manifest.rpcPort) || !port(manifest.adminPort) || !names(manifest.streams) || !names(manifest.consumes) || !names(manifest.calls)) {
    throw new Error(`${file}: "meshwork" needs rpcPort, adminPort (ports), streams, consumes and calls (lists of names)`);
  }
  return manifest;
}

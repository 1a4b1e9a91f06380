import { createPrivateKey } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { AdminRoute } from "@meshwork/platform";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JSONWebKeySet, type JWK } from "jose";

/** A private signing key as stored: a JWK with its kid and when it was created and superseded. */
export interface StoredKey extends JWK {
  kid: string;
  created_at: string;
  superseded_at?: string;
}

export interface KeyFile {
  keys: StoredKey[];
}

/**
 * identity's signing keys. The newest key signs; every key in the file is published in the JWKS
 * so tokens signed before a rotation verify until they expire. The file is re-read when it
 * changes (a rotated Kubernetes Secret is updated in place), so rotation needs no restart.
 */
export class SigningKeys {
  private file: KeyFile;
  private publicSet: JSONWebKeySet;
  private readonly location: string;
  private imported: { kid: string; key: CryptoKey | Uint8Array } | undefined;

  private constructor(location: string, file: KeyFile) {
    this.location = location;
    this.file = file;
    this.publicSet = publicJwks(file);
  }

  static async open(location: string, options: { create: boolean }): Promise<SigningKeys> {
    if (!fs.existsSync(location)) {
      if (!options.create) throw new Error(`signing keys file ${location} does not exist`);
      await writeKeyFile(location, { keys: [await newKey()] });
    }
    const keys = new SigningKeys(location, await readKeyFile(location));
    fs.watchFile(location, { interval: 1_000, persistent: false }, () => void keys.reload());
    return keys;
  }

  get current(): StoredKey {
    return this.file.keys.at(-1)!;
  }

  jwks(): JSONWebKeySet {
    return this.publicSet;
  }

  /** The signing key, imported once per key rather than once per token. */
  async privateKey(): Promise<CryptoKey | Uint8Array> {
    const current = this.current;
    if (this.imported?.kid !== current.kid) this.imported = { kid: current.kid, key: await importJWK(current, "ES256") };
    return this.imported.key;
  }

  close(): void {
    fs.unwatchFile(this.location);
  }

  async reload(): Promise<void> {
    try {
      const file = await readKeyFile(this.location);
      this.file = file;
      this.publicSet = publicJwks(file);
    } catch {
      // A half-written file during an update: keep the keys we have and read again on the next change.
    }
  }
}

/**
 * Rotation: a new key is appended and signs from now on; keys superseded longer ago than the
 * longest token lifetime are dropped, because no valid token can still name them.
 */
/** The JWKS on the admin port, where every service's token verifier fetches it. */
/** The JWKS is the same for everyone and safe to share; short, so a rotated-in key is seen within a minute. */
export const JWKS_CACHE_CONTROL = "public, max-age=60";

export function jwksRoute(keys: SigningKeys): AdminRoute {
  return (_req, res) => {
    res.writeHead(200, { "content-type": "application/jwk-set+json", "cache-control": JWKS_CACHE_CONTROL }).end(JSON.stringify(keys.jwks()));
  };
}

export async function rotateKeyFile(location: string, tokenTtlSeconds: number, now = new Date()): Promise<{ added: string; removed: string[] }> {
  const file = fs.existsSync(location) ? await readKeyFile(location) : { keys: [] };
  const cutoff = now.getTime() - tokenTtlSeconds * 1000;
  const removed = file.keys.filter((key) => key.superseded_at && Date.parse(key.superseded_at) < cutoff).map((key) => key.kid);
  const kept = file.keys
    .filter((key) => !removed.includes(key.kid))
    .map((key) => ({ ...key, superseded_at: key.superseded_at ?? now.toISOString() }));
  const added = await newKey(now);
  await writeKeyFile(location, { keys: [...kept, added] });
  return { added: added.kid, removed };
}

async function newKey(now = new Date()): Promise<StoredKey> {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { ...jwk, kid, alg: "ES256", use: "sig", created_at: now.toISOString() };
}

async function readKeyFile(location: string): Promise<KeyFile> {
  const text = await fs.promises.readFile(location, "utf8");
  if (text.includes("-----BEGIN")) {
    // One PEM key, as Helm's genPrivateKey "ecdsa" makes it.
    const jwk = createPrivateKey(text).export({ format: "jwk" }) as JWK;
    if (jwk.crv !== "P-256") throw new Error("signing key must be an EC P-256 key");
    const kid = await calculateJwkThumbprint(jwk);
    return { keys: [{ ...jwk, kid, alg: "ES256", use: "sig", created_at: new Date(0).toISOString() }] };
  }
  const parsed = JSON.parse(text) as KeyFile;
  if (!Array.isArray(parsed.keys) || parsed.keys.length === 0) throw new Error(`${location} holds no keys`);
  for (const key of parsed.keys) {
    if (key.kty !== "EC" || key.crv !== "P-256" || !key.d || !key.kid) throw new Error(`${location}: every key must be an EC P-256 private JWK with a kid`);
  }
  return parsed;
}

async function writeKeyFile(location: string, file: KeyFile): Promise<void> {
  await fs.promises.mkdir(path.dirname(location), { recursive: true });
  const temporary = `${location}.${process.pid}.tmp`;
  await fs.promises.writeFile(temporary, JSON.stringify(file, null, 2) + "\n", { mode: 0o600 });
  await fs.promises.rename(temporary, location);
}

function publicJwks(file: KeyFile): JSONWebKeySet {
  return {
    keys: file.keys.map(({ kty, crv, x, y, kid }) => ({ kty, crv, x, y, kid, alg: "ES256", use: "sig" })),
  };
}

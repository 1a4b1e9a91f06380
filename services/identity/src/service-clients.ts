import { createHash, timingSafeEqual } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { SERVICE_ROLE, UnauthenticatedError, uuidv7, type Logger } from "@meshwork/platform";
import { IssueServiceTokenResponseSchema, type IssueServiceTokenResponse } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import type { IdentityConfig } from "./config.ts";
import type { SigningKeys } from "./signing-keys.ts";
import { signAccessToken } from "./tokens.ts";

const CLIENT_ID = /^[a-z][a-z0-9-]{0,62}$/;
/** 128 bits of entropy as base64 is 22 characters: anything shorter is a password, not a secret. */
const MIN_SECRET_LENGTH = 22;

/**
 * The registered service clients of the client-credentials grant, and the grant itself. In a
 * cluster the secrets are a Kubernetes Secret mounted as a directory, one file per client named
 * after it (SERVICE_CLIENTS_DIR); in development, SERVICE_CLIENTS="orders=<secret>,...". Only a
 * digest of each secret is kept, and it is compared in constant time. No throttle: the secrets are
 * random and long, and a throttle keyed by client id would let anyone lock orders out.
 */
export class ServiceClients {
  private readonly digests: Map<string, Buffer>;
  private readonly keys: SigningKeys;
  private readonly config: IdentityConfig;
  private readonly log: Logger;

  constructor(secrets: Map<string, string>, keys: SigningKeys, config: IdentityConfig, log: Logger) {
    this.digests = new Map([...secrets].map(([id, secret]) => [id, digest(secret)]));
    this.keys = keys;
    this.config = config;
    this.log = log;
  }

  get registered(): string[] {
    return [...this.digests.keys()].sort();
  }

  /** The grant: a token with role `service` and the client's name in `svc`, or Unauthenticated. */
  async issue(clientId: string, clientSecret: string): Promise<IssueServiceTokenResponse> {
    const expected = this.digests.get(clientId);
    // The comparison runs for unknown clients too, so timing does not say which ids exist.
    const matches = timingSafeEqual(expected ?? digest(""), digest(clientSecret)) && expected !== undefined;
    if (!matches) {
      this.log.warn({ clientId: CLIENT_ID.test(clientId) ? clientId : "(malformed)" }, "service token refused");
      throw new UnauthenticatedError("invalid client credentials");
    }
    const expiresAt = new Date(Date.now() + this.config.SERVICE_TOKEN_TTL_SECONDS * 1000);
    const accessToken = await signAccessToken(this.keys, this.config, {
      subject: `service:${clientId}`,
      tokenId: uuidv7(),
      expiresAt,
      claims: { roles: [SERVICE_ROLE], svc: clientId },
    });
    return create(IssueServiceTokenResponseSchema, { accessToken, expiresAt: timestampFromMs(expiresAt.getTime()) });
  }
}

/** Reads the registered clients from SERVICE_CLIENTS_DIR and SERVICE_CLIENTS; a bad entry stops the start. */
export function loadServiceClientSecrets(config: Pick<IdentityConfig, "SERVICE_CLIENTS" | "SERVICE_CLIENTS_DIR">): Map<string, string> {
  const secrets = new Map<string, string>();
  const add = (id: string, secret: string, from: string) => {
    if (!CLIENT_ID.test(id)) throw new Error(`${from}: service client id "${id}" must be a service name (lowercase letters, digits, dashes)`);
    if (secret.length < MIN_SECRET_LENGTH) throw new Error(`${from}: the secret of service client "${id}" is shorter than ${MIN_SECRET_LENGTH} characters`);
    if (secrets.has(id)) throw new Error(`${from}: service client "${id}" is registered twice`);
    secrets.set(id, secret);
  };
  if (config.SERVICE_CLIENTS_DIR) {
    for (const entry of fs.readdirSync(config.SERVICE_CLIENTS_DIR, { withFileTypes: true })) {
      // A mounted Secret also holds ..data and timestamped directories (its atomic-update links).
      if (entry.name.startsWith(".")) continue;
      const file = path.join(config.SERVICE_CLIENTS_DIR, entry.name);
      if (!fs.statSync(file).isFile()) continue;
      add(entry.name, fs.readFileSync(file, "utf8").trim(), "SERVICE_CLIENTS_DIR");
    }
  }
  for (const pair of (config.SERVICE_CLIENTS ?? "").split(",").map((part) => part.trim()).filter(Boolean)) {
    const separator = pair.indexOf("=");
    if (separator < 1) throw new Error(`SERVICE_CLIENTS: expected <client>=<secret>, got an entry without "="`);
    add(pair.slice(0, separator), pair.slice(separator + 1), "SERVICE_CLIENTS");
  }
  return secrets;
}

function digest(secret: string): Buffer {
  return createHash("sha256").update(secret).digest();
}

import { trace } from "@opentelemetry/api";
import { localKeys, runService, serviceMeter } from "@meshwork/platform";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { access } from "./access.ts";
import { Accounts } from "./accounts.ts";
import { identityConfig, signingKeysFile } from "./config.ts";
import { IDENTITY_STREAM } from "./events.ts";
import { identityRoutes } from "./rpc.ts";
import { SigningKeys } from "./signing-keys.ts";
import { migrations, type IdentityTables } from "./store.ts";

const config = identityConfig();
// The same for everyone and safe to share; short, so a rotated-in key is seen within a minute.
const JWKS_CACHE_CONTROL = "public, max-age=60";
const keys = await SigningKeys.open(signingKeysFile(config), { create: config.SIGNING_KEYS_AUTOCREATE === "true" && !process.argv.includes("--check-config") }).catch(
  (error: Error) => {
    if (process.argv.includes("--check-config")) return undefined;
    throw error;
  },
);
let accounts: Accounts | undefined;

await runService<IdentityTables, typeof config>({
  name: "identity",
  config,
  migrations,
  services: [IdentityService],
  access,
  cacheControl: { [`/${IdentityService.typeName}/GetJwks`]: JWKS_CACHE_CONTROL },
  streams: [IDENTITY_STREAM],
  tokenKeys: () => localKeys(() => keys!.jwks()),
  beforeStart: async (context) => {
    accounts = new Accounts(context, keys!, serviceMeter);
    // In a span of its own, so the admin's SignedUp event carries a trace id like every other event.
    await trace.getTracer("identity").startActiveSpan("bootstrap admin", async (span) => {
      await accounts!.ensureAdmin(config.MESHWORK_ADMIN_EMAIL, config.MESHWORK_ADMIN_PASSWORD).finally(() => span.end());
    });
  },
  routes: (router) => identityRoutes(accounts!, keys!)(router),
  adminRoutes: () => ({
    "/.well-known/jwks.json": (_req, res) => {
      res.writeHead(200, { "content-type": "application/jwk-set+json", "cache-control": JWKS_CACHE_CONTROL }).end(JSON.stringify(keys!.jwks()));
    },
  }),
});

import { trace } from "@opentelemetry/api";
import { localKeys, runService, serviceMeter } from "@meshwork/platform";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { access } from "./access.ts";
import { Accounts } from "./accounts.ts";
import { identityConfig, signingKeysFile } from "./config.ts";
import { IDENTITY_STREAM } from "./events.ts";
import { identityRoutes } from "./rpc.ts";
import { loadServiceClientSecrets, ServiceClients } from "./service-clients.ts";
import { SigningKeys } from "./signing-keys.ts";
import { migrations, type IdentityTables } from "./store.ts";

const config = identityConfig();
const keys = await SigningKeys.open(signingKeysFile(config), { create: config.SIGNING_KEYS_AUTOCREATE === "true" && !process.argv.includes("--check-config") }).catch(
  (error: Error) => {
    if (process.argv.includes("--check-config")) return undefined;
    throw error;
  },
);
let accounts: Accounts | undefined;
let serviceClients: ServiceClients | undefined;

await runService<IdentityTables, typeof config>({
  name: "identity",
  config,
  migrations,
  services: [IdentityService],
  access,
  streams: [IDENTITY_STREAM],
  tokenKeys: () => localKeys(() => keys!.jwks()),
  beforeStart: async (context) => {
    accounts = new Accounts(context, keys!, serviceMeter);
    // Read here, not at import: --check-config validates settings without the mounted Secrets.
    serviceClients = new ServiceClients(loadServiceClientSecrets(config), keys!, config, context.log);
    context.log.info({ clients: serviceClients.registered }, "service clients registered");
    // In a span of its own, so the admin's SignedUp event carries a trace id like every other event.
    await trace.getTracer("identity").startActiveSpan("bootstrap admin", async (span) => {
      await accounts!.ensureAdmin(config.MESHWORK_ADMIN_EMAIL, config.MESHWORK_ADMIN_PASSWORD).finally(() => span.end());
    });
  },
  routes: (router) => identityRoutes(accounts!, keys!, serviceClients!)(router),
  adminRoutes: () => ({
    "/.well-known/jwks.json": (_req, res) => {
      res.writeHead(200, { "content-type": "application/jwk-set+json", "cache-control": "max-age=60" }).end(JSON.stringify(keys!.jwks()));
    },
  }),
});

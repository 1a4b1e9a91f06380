import { localKeys, periodicWorker, runService, serviceMeter } from "@meshwork/platform";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { access } from "./access.ts";
import { Accounts } from "./accounts.ts";
import { AccountClosures } from "./closures.ts";
import { identityConfig, signingKeysFile } from "./config.ts";
import { CLOSURE_PARTICIPANTS, closureReportConsumers, IDENTITY_STREAM } from "./events.ts";
import { identityRoutes } from "./rpc.ts";
import { loadServiceClientSecrets, ServiceClients } from "./service-clients.ts";
import { JWKS_CACHE_CONTROL, jwksRoute, SigningKeys } from "./signing-keys.ts";
import { migrations, type IdentityTables } from "./store.ts";

const config = identityConfig();

await runService<IdentityTables, typeof config>({
  name: "identity",
  config,
  migrations,
  services: [IdentityService],
  access,
  cacheControl: { [`/${IdentityService.typeName}/GetJwks`]: JWKS_CACHE_CONTROL },
  streams: [IDENTITY_STREAM],
  async setup(context) {
    const keys = await SigningKeys.open(signingKeysFile(config), { create: config.SIGNING_KEYS_AUTOCREATE === "true" });
    const accounts = new Accounts(context, keys, serviceMeter);
    const closures = new AccountClosures(context, CLOSURE_PARTICIPANTS.map((participant) => participant.name));
    const serviceClients = new ServiceClients(loadServiceClientSecrets(config), keys, config, context.log);
    context.log.info({ clients: serviceClients.registered }, "service clients registered");
    await accounts.ensureAdmin(config.MESHWORK_ADMIN_EMAIL, config.MESHWORK_ADMIN_PASSWORD);
    return {
      routes: identityRoutes(accounts, closures, keys, serviceClients),
      consumers: closureReportConsumers((trx, userId, participant) => closures.recordReport(trx, userId, participant)),
      workers: [periodicWorker({ name: "closure timeout", intervalMs: 1_000, log: context.log, work: () => closures.markStuck() })],
      adminRoutes: { "/.well-known/jwks.json": jwksRoute(keys) },
      tokenKeys: localKeys(() => keys.jwks()),
    };
  },
});

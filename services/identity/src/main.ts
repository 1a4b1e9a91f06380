import { localKeys, runService, serviceMeter } from "@meshwork/platform";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { access } from "./access.ts";
import { Accounts } from "./accounts.ts";
import { identityConfig, signingKeysFile } from "./config.ts";
import { IDENTITY_STREAM } from "./events.ts";
import { identityRoutes } from "./rpc.ts";
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
    await accounts.ensureAdmin(config.MESHWORK_ADMIN_EMAIL, config.MESHWORK_ADMIN_PASSWORD);
    return {
      routes: identityRoutes(accounts, keys),
      adminRoutes: { "/.well-known/jwks.json": jwksRoute(keys) },
      tokenKeys: localKeys(() => keys.jwks()),
    };
  },
});

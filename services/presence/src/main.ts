import { runService } from "@meshwork/platform";
import { PresenceAdminService, PresenceService } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import { PresenceService as PresenceServiceV2 } from "@meshwork/proto/meshwork/presence/v2/presence_pb.js";
import { access } from "./access.ts";
import { presenceConfig } from "./config.ts";
import { presenceConsumers } from "./events.ts";
import { presenceRoutes } from "./rpc.ts";
import { migrations, sweepExpired, type PresenceTables } from "./store.ts";

const config = presenceConfig();

const service = await runService<PresenceTables, typeof config>({
  name: "presence",
  config,
  migrations,
  services: [PresenceService, PresenceServiceV2, PresenceAdminService],
  access,
  consumers: presenceConsumers({ poisonUserId: config.MESHWORK_FAULT_POISON_USER_ID }),
  routes: (router, context) => presenceRoutes(context)(router),
});

// Sessions end on SignedOut or when their token expires; expired rows are swept periodically
// (answers already ignore them, the sweep keeps the table small).
setInterval(() => void sweepExpired(service.context.database.db, Date.now()).catch(() => undefined), config.EXPIRY_SWEEP_SECONDS * 1000).unref();

import { periodicWorker, runService } from "@meshwork/platform";
import { PresenceAdminService, PresenceService } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import { PresenceService as PresenceServiceV2 } from "@meshwork/proto/meshwork/presence/v2/presence_pb.js";
import { access } from "./access.ts";
import { presenceConfig } from "./config.ts";
import { PRESENCE_STREAM, presenceConsumers } from "./events.ts";
import { presenceRoutes } from "./rpc.ts";
import { migrations, sweepExpired, type PresenceTables } from "./store.ts";

const config = presenceConfig();

await runService<PresenceTables, typeof config>({
  name: "presence",
  config,
  migrations,
  services: [PresenceService, PresenceServiceV2, PresenceAdminService],
  access,
  streams: [PRESENCE_STREAM],
  setup: (context) => ({
    routes: presenceRoutes(context),
    consumers: presenceConsumers(),
    // Answers already ignore expired sessions; the sweep keeps the table small.
    workers: [periodicWorker({ name: "expiry sweep", intervalMs: config.EXPIRY_SWEEP_SECONDS * 1000, log: context.log, work: () => sweepExpired(context.database.db, Date.now()) })],
  }),
});

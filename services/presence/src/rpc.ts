import { create } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { requirePrincipal, type ServiceContext } from "@meshwork/platform";
import {
  GetOnlineCountResponseSchema,
  ListOnlineUsersResponseSchema,
  OnlineUserSchema,
  PresenceAdminService,
  PresenceService,
  RebuildProjectionResponseSchema,
} from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import type { PresenceConfig } from "./config.ts";
import { onlineUsersFor } from "./domain/online.ts";
import { PROJECTION_CONSUMER } from "./events.ts";
import { clearProjection, countOnlineUsers, liveSessions, sweepExpired, type PresenceTables } from "./store.ts";

export function presenceRoutes(context: ServiceContext<PresenceTables, PresenceConfig>) {
  const { db } = context.database;
  return (router: ConnectRouter) => {
    router.service(PresenceService, {
      async getOnlineCount() {
        return create(GetOnlineCountResponseSchema, { count: BigInt(await countOnlineUsers(db, Date.now())) });
      },
      async listOnlineUsers(_req, ctx) {
        const principal = requirePrincipal(ctx);
        const users = onlineUsersFor(principal.roles, await liveSessions(db, Date.now()), Date.now());
        return create(ListOnlineUsersResponseSchema, { users: users.map((user) => create(OnlineUserSchema, user)) });
      },
    });
    router.service(PresenceAdminService, {
      async rebuildProjection() {
        const applied = await context.consumer(PROJECTION_CONSUMER).rebuild((trx) => clearProjection(trx));
        await sweepExpired(db, Date.now());
        return create(RebuildProjectionResponseSchema, {
          eventsApplied: BigInt(applied),
          onlineUsers: BigInt(await countOnlineUsers(db, Date.now())),
        });
      },
    });
  };
}

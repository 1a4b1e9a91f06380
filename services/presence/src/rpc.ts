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
import * as v2 from "@meshwork/proto/meshwork/presence/v2/presence_pb.js";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { PresenceConfig } from "./config.ts";
import { OnlineCountFeed } from "./count-feed.ts";
import { pageOf } from "./domain/pages.ts";
import { onlineUsersFor } from "./domain/online.ts";
import { PROJECTION_CONSUMER } from "./events.ts";
import { clearProjection, countOnlineSessions, countOnlineUsers, liveSessions, sweepExpired, type PresenceTables } from "./store.ts";

export function presenceRoutes(context: ServiceContext<PresenceTables, PresenceConfig>) {
  const { db } = context.database;
  const feed = new OnlineCountFeed(
    async (now) => ({ onlineUsers: await countOnlineUsers(db, now), onlineSessions: await countOnlineSessions(db, now) }),
    context.config.WATCH_POLL_MS,
  );
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
    // v2 beside v1: same projection, the new contract. v1 stays until its sunset (main.ts).
    router.service(v2.PresenceService, {
      async getPresenceSummary() {
        const now = Date.now();
        return create(v2.GetPresenceSummaryResponseSchema, {
          onlineUsers: BigInt(await countOnlineUsers(db, now)),
          onlineSessions: BigInt(await countOnlineSessions(db, now)),
          asOf: timestampFromMs(now),
        });
      },
      async listOnlineUsers(req, ctx) {
        const principal = requirePrincipal(ctx);
        const now = Date.now();
        const page = pageOf(onlineUsersFor(principal.roles, await liveSessions(db, now), now), req.pageSize, req.pageToken);
        return create(v2.ListOnlineUsersResponseSchema, {
          users: page.items.map((user) => create(v2.OnlineUserSchema, user)),
          nextPageToken: page.nextPageToken,
        });
      },
      async *watchOnlineCount(_req, ctx) {
        const heartbeatSeconds = context.config.WATCH_HEARTBEAT_SECONDS;
        const ended = AbortSignal.any([ctx.signal, context.shutdownSignal]);
        for await (const summary of feed.watch(ended, heartbeatSeconds * 1000)) {
          yield create(v2.WatchOnlineCountResponseSchema, {
            onlineUsers: BigInt(summary.onlineUsers),
            onlineSessions: BigInt(summary.onlineSessions),
            asOf: timestampFromMs(summary.asOf),
            heartbeatSeconds,
          });
        }
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

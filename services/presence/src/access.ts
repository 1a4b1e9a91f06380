import { defineAccess, rulesFor, SIGNED_IN } from "@meshwork/platform";
import { PresenceAdminService, PresenceService } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import { PresenceService as PresenceServiceV2 } from "@meshwork/proto/meshwork/presence/v2/presence_pb.js";

/** presence's access table: enforced by the platform's request gate and rendered into the mesh policy. */
export const access = defineAccess({
  ...rulesFor(PresenceService, {
    GetOnlineCount: SIGNED_IN,
    ListOnlineUsers: ["publisher", "admin"],
  }),
  ...rulesFor(PresenceServiceV2, {
    GetPresenceSummary: SIGNED_IN,
    WatchOnlineCount: SIGNED_IN,
    ListOnlineUsers: ["publisher", "admin"],
  }),
  ...rulesFor(PresenceAdminService, {
    RebuildProjection: ["admin"],
  }),
});

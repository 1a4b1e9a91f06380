import { defineAccess, rulesFor } from "@meshwork/platform";
import { AuditService, DeadLetterService } from "@meshwork/proto/meshwork/audit/v1/audit_pb.js";

/** audit's access table: enforced by the platform's request gate and rendered into the mesh policy. */
export const access = defineAccess({
  ...rulesFor(AuditService, {
    ListEvents: ["publisher", "admin"],
    GetEvent: ["publisher", "admin"],
  }),
  ...rulesFor(DeadLetterService, {
    ListDeadLetters: ["admin"],
    ReplayDeadLetter: ["admin"],
  }),
});

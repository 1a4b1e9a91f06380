import { runService } from "@meshwork/platform";
import { AuditService, DeadLetterService } from "@meshwork/proto/meshwork/audit/v1/audit_pb.js";
import { access } from "./access.ts";
import { auditConfig } from "./config.ts";
import { deadLetterRoutes } from "./dead-letters.ts";
import { AUDIT_STREAM, auditConsumers } from "./events.ts";
import { auditRoutes } from "./rpc.ts";
import { migrations, type AuditTables } from "./store.ts";

const config = auditConfig();

await runService<AuditTables, typeof config>({
  name: "audit",
  config,
  migrations,
  services: [AuditService, DeadLetterService],
  access,
  streams: [AUDIT_STREAM],
  setup: (context) => ({
    routes: (router) => {
      auditRoutes(context)(router);
      deadLetterRoutes(context)(router);
    },
    consumers: auditConsumers(config.AUDIT_STREAMS),
  }),
});

import { runService } from "@meshwork/platform";
import { AuditService } from "@meshwork/proto/meshwork/audit/v1/audit_pb.js";
import { access } from "./access.ts";
import { auditConfig } from "./config.ts";
import { auditConsumers } from "./events.ts";
import { auditRoutes } from "./rpc.ts";
import { migrations, type AuditTables } from "./store.ts";

const config = auditConfig();

await runService<AuditTables, typeof config>({
  name: "audit",
  config,
  migrations,
  services: [AuditService],
  access,
  setup: (context) => ({ routes: auditRoutes(context), consumers: auditConsumers(config.AUDIT_STREAMS) }),
});

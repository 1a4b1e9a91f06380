import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { NotFoundError, requirePrincipal, type Principal, type ServiceContext } from "@meshwork/platform";
import { AuditEventSchema, AuditService, GetEventResponseSchema, ListEventsResponseSchema, type AuditEvent } from "@meshwork/proto/meshwork/audit/v1/audit_pb.js";
import type { AuditConfig } from "./config.ts";
import { decodePageToken, encodePageToken, pageSize } from "./domain/paging.ts";
import { redactPersonalData } from "./domain/redaction.ts";
import { decodePayload } from "./payloads.ts";
import { getEvent, listEvents, type AuditTables, type StoredEvent } from "./store.ts";

export function auditRoutes(context: ServiceContext<AuditTables, AuditConfig>) {
  const { db } = context.database;
  return (router: ConnectRouter) =>
    router.service(AuditService, {
      async listEvents(req, ctx) {
        const principal = requirePrincipal(ctx);
        const limit = pageSize(req.pageSize);
        const rows = await listEvents(db, {
          type: req.type || undefined,
          subjectPrefix: req.subjectPrefix || undefined,
          userId: req.userId || undefined,
          since: req.since ? timestampMs(req.since) : undefined,
          until: req.until ? timestampMs(req.until) : undefined,
          afterId: decodePageToken(req.pageToken),
          limit: limit + 1,
        });
        const page = rows.slice(0, limit);
        return create(ListEventsResponseSchema, {
          events: page.map((row) => toAuditEvent(row, principal)),
          nextPageToken: rows.length > limit ? encodePageToken(page.at(-1)!.id) : "",
        });
      },
      async getEvent(req, ctx) {
        const row = await getEvent(db, req.id);
        if (!row) throw new NotFoundError("no event with this id");
        return create(GetEventResponseSchema, { event: toAuditEvent(row, requirePrincipal(ctx)) });
      },
    });
}

/** Admins see the payload in full; publishers see it with personal data redacted and no raw bytes. */
function toAuditEvent(row: StoredEvent, principal: Principal): AuditEvent {
  const admin = principal.roles.includes("admin");
  const payload = Buffer.from(row.payload, "base64");
  const decoded = decodePayload(row.type, payload);
  return create(AuditEventSchema, {
    id: row.id,
    type: row.type,
    subject: row.subject,
    source: row.source,
    time: timestampFromMs(Number(row.time)),
    traceId: row.trace_id,
    userId: row.user_id,
    payloadJson: JSON.stringify(admin ? decoded : redactPersonalData(decoded)),
    payload: admin ? payload : new Uint8Array(),
    redacted: !admin,
    streamSequence: BigInt(row.stream_sequence),
  });
}

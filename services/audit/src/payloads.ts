import { createRegistry, fromBinary, fromJson, toBinary, toJson, type JsonValue } from "@bufbuild/protobuf";
import { ERASED, redactPersonalData } from "./domain/redaction.ts";
import { EVENT_FILES } from "./audited.generated.ts";

/** Every event type audit can decode for display. Unknown types are kept and shown as undecoded. */
const registry = createRegistry(...EVENT_FILES);

export function decodePayload(type: string, payload: Uint8Array): JsonValue {
  const schema = registry.getMessage(type);
  if (!schema) return { undecoded: Buffer.from(payload).toString("base64") };
  return toJson(schema, fromBinary(schema, payload), { registry });
}

/**
 * The tombstone of a kept event: the same message with every personal field replaced by
 * "[erased]", so what happened and when stays auditable. An event audit cannot decode keeps
 * nothing, since it cannot tell what in it is personal.
 */
export function erasePersonalData(type: string, payload: Uint8Array): Uint8Array {
  const schema = registry.getMessage(type);
  if (!schema) return new Uint8Array();
  const erased = redactPersonalData(toJson(schema, fromBinary(schema, payload), { registry }), ERASED) as JsonValue;
  return toBinary(schema, fromJson(schema, erased, { registry }));
}

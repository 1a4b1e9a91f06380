import { createRegistry, fromBinary, toJson, type JsonValue } from "@bufbuild/protobuf";
import { file_meshwork_identity_v1_events } from "@meshwork/proto/meshwork/identity/v1/events_pb.js";
import { file_meshwork_orders_v1_events } from "@meshwork/proto/meshwork/orders/v1/events_pb.js";
import { file_meshwork_payments_v1_events } from "@meshwork/proto/meshwork/payments/v1/events_pb.js";
import { file_meshwork_shipping_v1_events } from "@meshwork/proto/meshwork/shipping/v1/events_pb.js";

/** Every event type audit can decode for display. Unknown types are kept and shown as undecoded. */
const registry = createRegistry(file_meshwork_identity_v1_events, file_meshwork_orders_v1_events, file_meshwork_payments_v1_events, file_meshwork_shipping_v1_events);

export function decodePayload(type: string, payload: Uint8Array): JsonValue {
  const schema = registry.getMessage(type);
  if (!schema) return { undecoded: Buffer.from(payload).toString("base64") };
  return toJson(schema, fromBinary(schema, payload), { registry });
}

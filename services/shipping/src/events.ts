import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { enqueueEvent, type PlatformTables, type StreamSpec } from "@meshwork/platform";
import { ShipmentEventSchema, type ShipmentEvent } from "@meshwork/proto/meshwork/shipping/v1/events_pb.js";
import type { Transaction } from "kysely";

/** shipping publishes; it consumes nothing. One stream for the domain, one subject per variant. */
export const SHIPPING_STREAM: StreamSpec = {
  name: "SHIPPING",
  subjects: ["shipping.>"],
  duplicateWindowMs: 2 * 60_000,
};

export const subjects = {
  created: "shipping.v1.shipment.created",
} as const;

type Variant = NonNullable<ShipmentEvent["event"]["case"]>;

/** Enqueues a ShipmentEvent in the caller's transaction (the outbox); the relay publishes it after commit. */
export function emitShipmentEvent<T extends PlatformTables>(trx: Transaction<T>, shipmentId: string, event: ShipmentEvent["event"]): Promise<string> {
  if (!event.case) throw new Error("a ShipmentEvent needs a variant");
  return enqueueEvent(trx, {
    subject: subjects[event.case satisfies Variant],
    schema: ShipmentEventSchema,
    message: create(ShipmentEventSchema, { event }),
    aggregateId: shipmentId,
  });
}

export const now = () => timestampFromMs(Date.now());

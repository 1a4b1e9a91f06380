import { eventEmitter, type StreamSpec } from "@meshwork/platform";
import { ShipmentEventSchema } from "@meshwork/proto/meshwork/shipping/v1/events_pb.js";

/** shipping publishes; it consumes nothing. One stream for the domain, one subject per variant. */
export const SHIPPING_STREAM: StreamSpec = {
  name: "SHIPPING",
  subjects: ["shipping.>"],
  duplicateWindowMs: 2 * 60_000,
};

/** The subject of each ShipmentEvent variant; `shipmentEvents.emit` enqueues one in the caller's transaction (the outbox). */
export const shipmentEvents = eventEmitter(ShipmentEventSchema, {
  created: "shipping.v1.shipment.created",
});

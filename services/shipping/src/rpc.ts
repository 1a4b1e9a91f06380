import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { AddressSchema, CreateShipmentResponseSchema, ShipmentSchema, ShippingService } from "@meshwork/proto/meshwork/shipping/v1/shipping_pb.js";
import type { Shipments } from "./shipments.ts";

/** Thin handlers: the platform has checked the request against its contract rules; shape it for the use case, shape its answer. */
export function shippingRoutes(shipments: Shipments) {
  return (router: ConnectRouter) =>
    router.service(ShippingService, {
      async createShipment(req) {
        // The contract requires the address; the defaults only satisfy the type.
        const address = req.address;
        const shipment = await shipments.create({
          idempotencyKey: req.idempotencyKey,
          orderId: req.orderId,
          userId: req.userId,
          address: {
            recipient: address?.recipient ?? "",
            line1: address?.line1 ?? "",
            city: address?.city ?? "",
            postalCode: address?.postalCode ?? "",
            countryCode: (address?.countryCode ?? "").trim().toUpperCase(),
          },
        });
        return create(CreateShipmentResponseSchema, {
          shipment: create(ShipmentSchema, {
            id: shipment.id,
            orderId: shipment.orderId,
            userId: shipment.userId,
            address: create(AddressSchema, shipment.address),
            trackingNumber: shipment.trackingNumber,
            createdAt: timestampFromMs(shipment.createdAt),
          }),
        });
      },
    });
}

import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { uuidv7, type ServiceContext } from "@meshwork/platform";
import { ShipmentEvent_CreatedSchema } from "@meshwork/proto/meshwork/shipping/v1/events_pb.js";
import type { ShippingConfig } from "./config.ts";
import { assertSameShipment, assertServiceable, newTrackingNumber, type ShipmentInput, type ShipmentRecord } from "./domain/shipments.ts";
import { shipmentEvents } from "./events.ts";
import { findByKey, insertShipment, type ShippingTables } from "./store.ts";

/** shipping's use case: one shipment per idempotency key, committed with its event. */
export class Shipments {
  private readonly context: ServiceContext<ShippingTables, ShippingConfig>;

  constructor(context: ServiceContext<ShippingTables, ShippingConfig>) {
    this.context = context;
  }

  async create(input: ShipmentInput): Promise<ShipmentRecord> {
    const { db } = this.context.database;
    const existing = await findByKey(db, input.idempotencyKey);
    if (existing) {
      assertSameShipment(existing, input);
      return existing;
    }
    assertServiceable(input.address.countryCode, this.context.config.SHIPPING_UNSERVICEABLE_COUNTRIES);
    const shipment: ShipmentRecord = {
      id: uuidv7(),
      idempotencyKey: input.idempotencyKey,
      orderId: input.orderId,
      userId: input.userId,
      address: input.address,
      trackingNumber: newTrackingNumber(),
      createdAt: Date.now(),
    };
    await this.context.unitOfWork(async (trx) => {
      if (!(await insertShipment(trx, shipment))) return;
      await shipmentEvents.emit(trx, shipment.id, {
        case: "created",
        value: create(ShipmentEvent_CreatedSchema, {
          shipmentId: shipment.id,
          orderId: shipment.orderId,
          userId: shipment.userId,
          countryCode: shipment.address.countryCode,
          trackingNumber: shipment.trackingNumber,
          occurredAt: timestampNow(),
        }),
      });
      this.context.log.info({ shipmentId: shipment.id, orderId: shipment.orderId }, "shipment created");
    });
    const stored = (await findByKey(db, input.idempotencyKey))!;
    assertSameShipment(stored, input);
    return stored;
  }
}

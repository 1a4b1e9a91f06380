import type { PlatformTables } from "@meshwork/platform";
import type { Kysely, Transaction } from "kysely";
import type { Address, ShipmentRecord } from "./domain/shipments.ts";
import * as shipments from "./migrations/0001_shipments.ts";

export const migrations = { "0001_shipments": shipments };

export interface ShippingTables {
  shipments: {
    id: string;
    idempotency_key: string;
    order_id: string;
    user_id: string;
    /** JSON of the address: text, so the column is the same in SQLite and PostgreSQL. */
    address: string;
    country_code: string;
    tracking_number: string;
    created_at: number;
  };
}

export type ShippingDatabase = ShippingTables & PlatformTables;
type Db = Kysely<ShippingDatabase> | Transaction<ShippingDatabase>;

/** The only module that speaks SQL for shipping. */
export async function findByKey(db: Db, key: string): Promise<ShipmentRecord | undefined> {
  const row = await db.selectFrom("shipments").selectAll().where("idempotency_key", "=", key).executeTakeFirst();
  return row && toShipment(row);
}

/** Inserts a shipment; false when its key is already taken (the unique index decides). */
export async function insertShipment(db: Db, shipment: ShipmentRecord): Promise<boolean> {
  const result = await db
    .insertInto("shipments")
    .values({
      id: shipment.id,
      idempotency_key: shipment.idempotencyKey,
      order_id: shipment.orderId,
      user_id: shipment.userId,
      address: JSON.stringify(shipment.address),
      country_code: shipment.address.countryCode,
      tracking_number: shipment.trackingNumber,
      created_at: shipment.createdAt,
    })
    .onConflict((conflict) => conflict.column("idempotency_key").doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
}

function toShipment(row: ShippingTables["shipments"]): ShipmentRecord {
  return {
    id: row.id,
    idempotencyKey: row.idempotency_key,
    orderId: row.order_id,
    userId: row.user_id,
    address: JSON.parse(row.address) as Address,
    trackingNumber: row.tracking_number,
    createdAt: Number(row.created_at),
  };
}

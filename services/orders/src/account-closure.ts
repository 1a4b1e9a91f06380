import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { PlatformTables } from "@meshwork/platform";
import { OrderEvent_AccountOrdersClosedSchema } from "@meshwork/proto/meshwork/orders/v1/events_pb.js";
import type { Transaction } from "kysely";
import { orderEvents } from "./events.ts";
import { reportAccountClosedIfDone, startAccountClosure, type OrdersTables } from "./store.ts";

type Trx = Transaction<OrdersTables & PlatformTables>;

/**
 * orders' part of the account-closure choreography, on hearing AccountClosureRequested: no order
 * may be placed for the account any more, and each unfinished one is withdrawn (the saga runner
 * cancels it, refunding a charge). With nothing left open, orders reports at once.
 */
export async function withdrawAccountOrders(trx: Trx, userId: string): Promise<void> {
  if ((await startAccountClosure(trx, userId, Date.now())) === undefined) return;
  await reportIfDone(trx, userId);
}

/** Publishes AccountOrdersClosed once a closing account has no unfinished order left (once only). */
export async function reportIfDone(trx: Trx, userId: string): Promise<void> {
  const withdrawn = await reportAccountClosedIfDone(trx, userId, Date.now());
  if (withdrawn === undefined) return;
  await orderEvents.emit(trx, userId, {
    case: "accountOrdersClosed",
    value: create(OrderEvent_AccountOrdersClosedSchema, { userId, ordersCancelled: withdrawn, occurredAt: timestampNow() }),
  });
}

import { serviceMeter } from "@meshwork/platform";
import type { Kysely } from "kysely";
import { ORDER_STATES, type OrderState } from "./domain/saga.ts";
import { countByState, oldestOpenSagaUpdatedAt, type OrdersDatabase } from "./store.ts";

/** Saga transitions as they commit, by the state left and the state reached. */
export const sagaTransitions = serviceMeter.createCounter("meshwork.orders.saga_transitions", {
  description: "Checkout saga transitions committed, by from and to state",
});

/**
 * Gauges read from the orders table at each scrape, so every replica reports the same truth:
 * orders per saga state, and how long the least recently moved unfinished saga has stood still
 * (a saga stuck on a step that keeps failing shows up here before anyone complains).
 */
export function registerSagaGauges(db: Kysely<OrdersDatabase>): void {
  serviceMeter.createObservableGauge("meshwork.orders.sagas", { description: "Orders by saga state" }).addCallback(async (result) => {
    const counts = await countByState(db);
    for (const state of ORDER_STATES) result.observe(counts.get(state) ?? 0, { state });
  });
  serviceMeter
    .createObservableGauge("meshwork.orders.saga_oldest_open_age", { description: "Seconds since the least recently moved unfinished saga last moved (0 when none is open)", unit: "s" })
    .addCallback(async (result) => {
      const oldest = await oldestOpenSagaUpdatedAt(db);
      result.observe(oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000));
    });
}

export function recordTransition(from: OrderState, to: OrderState): void {
  sagaTransitions.add(1, { from, to });
}

import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { Logger, PlatformTables, Worker } from "@meshwork/platform";
import { OrderEvent_CancelledSchema, OrderEvent_ConfirmedSchema } from "@meshwork/proto/meshwork/orders/v1/events_pb.js";
import { propagation, ROOT_CONTEXT, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Kysely, Transaction } from "kysely";
import { reportIfDone } from "./account-closure.ts";
import { advance, isFinal, retryDelayMs, stepFor, withdraw, type Advance } from "./domain/saga.ts";
import { orderEvents } from "./events.ts";
import { recordTransition } from "./metrics.ts";
import type { SagaSteps } from "./steps.ts";
import { claimSaga, dueSagas, findOrder, releaseSaga, renewLease, scheduleRetry, transitionOrder, type OrderRecord, type OrdersDatabase, type OrdersTables } from "./store.ts";

const tracer = trace.getTracer("@meshwork/orders/saga");

export interface SagaRunnerOptions {
  db: Kysely<OrdersDatabase>;
  unitOfWork<T>(work: (trx: Transaction<OrdersTables & PlatformTables>) => Promise<T>): Promise<T>;
  steps: SagaSteps;
  log: Logger;
  pollMs: number;
  leaseMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  batchSize?: number;
}

/**
 * Drives every unfinished saga to a final state. The state lives in orders' database, so after a
 * crash the next runner finds what was left and carries on from the last committed transition: a
 * step may run again, which is why every step is idempotent by a key derived from the order.
 */
export class SagaRunner implements Worker {
  readonly name = "saga runner";
  private readonly options: Required<SagaRunnerOptions>;
  private stopped = false;
  /** Set while passes over the due sagas fail (the database is unreachable, say): the service is not ready. */
  private failing = false;
  private woken = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(options: SagaRunnerOptions) {
    this.options = { batchSize: 32, ...options };
  }

  start(): void {
    this.loop ??= this.run();
  }

  isHealthy(): boolean {
    return !this.failing;
  }

  /** A saga is waiting: look now rather than at the next poll. */
  nudge(): void {
    this.woken = true;
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      this.woken = false;
      try {
        const ids = await dueSagas(this.options.db, Date.now(), this.options.batchSize);
        await Promise.all(ids.map((id) => this.drive(id)));
        this.failing = false;
        if (ids.length === this.options.batchSize) continue;
      } catch (error) {
        this.failing = true;
        if (!this.stopped) this.options.log.error({ err: (error as Error).message }, "saga runner pass failed");
      }
      if (this.stopped || this.woken) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.options.pollMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** Runs one saga's steps until it is final or a step must wait for a retry. */
  private async drive(id: string): Promise<void> {
    const { db, leaseMs } = this.options;
    if (!(await claimSaga(db, id, Date.now(), Date.now() + leaseMs))) return;
    try {
      for (let order = await findOrder(db, id); order && !this.stopped; order = await findOrder(db, id)) {
        const step = stepFor(order.state);
        if (!step) return;
        // The account is closing: the order is withdrawn instead of taking its next step.
        const withdrawal = order.withdrawn ? withdraw(order) : undefined;
        if (withdrawal) {
          if (!(await this.apply(order, withdrawal))) return;
          continue;
        }
        await renewLease(db, id, Date.now() + leaseMs);
        const parent = order.traceparent ? propagation.extract(ROOT_CONTEXT, { traceparent: order.traceparent }) : ROOT_CONTEXT;
        const moved = await tracer.startActiveSpan(
          `orders saga ${step}`,
          { attributes: { "meshwork.order.id": order.id, "meshwork.saga.step": step, "meshwork.saga.state": order.state } },
          parent,
          async (span) => {
            try {
              const outcome = await this.options.steps.run(step, order!);
              const next = advance(order!, outcome);
              span.setAttribute("meshwork.saga.outcome", outcome.kind);
              if (next.kind === "retry") span.setStatus({ code: SpanStatusCode.ERROR, message: next.reason });
              return await this.apply(order!, next);
            } finally {
              span.end();
            }
          },
        );
        if (!moved) return;
      }
    } finally {
      await releaseSaga(db, id).catch(() => undefined);
    }
  }

  /** Commits a transition with its event, or schedules the retry; true when the saga moved on. */
  private async apply(order: OrderRecord, next: Advance): Promise<boolean> {
    if (next.kind === "retry") {
      const attempts = order.attempts + 1;
      const delay = retryDelayMs(attempts, this.options.retryBaseMs, this.options.retryMaxMs);
      this.options.log.warn({ orderId: order.id, state: order.state, attempts, retryInMs: delay, reason: next.reason }, "saga step failed; will retry");
      await scheduleRetry(this.options.db, order.id, { attempts, nextAttemptAt: Date.now() + delay, error: next.reason });
      return false;
    }
    const moved = await this.options.unitOfWork(async (trx) => {
      const at = Date.now();
      if (!(await transitionOrder(trx, order.id, order.state, { state: next.to, paymentId: next.paymentId, shipmentId: next.shipmentId, cancellationReason: next.cancellationReason, at }))) {
        return false;
      }
      if (next.emit === "confirmed") {
        await orderEvents.emit(trx, order.id, {
          case: "confirmed",
          value: create(OrderEvent_ConfirmedSchema, { orderId: order.id, userId: order.userId, paymentId: next.paymentId ?? "", shipmentId: next.shipmentId ?? "", occurredAt: timestampNow() }),
        });
      } else if (next.emit === "cancelled") {
        await orderEvents.emit(trx, order.id, {
          case: "cancelled",
          value: create(OrderEvent_CancelledSchema, {
            orderId: order.id,
            userId: order.userId,
            reason: next.cancellationReason ?? "",
            refundedPaymentId: order.state === "REFUNDING" ? (next.paymentId ?? "") : "",
            occurredAt: timestampNow(),
          }),
        });
      }
      // The last open order of a closing account to finish lets orders report its part.
      if (isFinal(next.to)) await reportIfDone(trx, order.userId);
      return true;
    });
    if (moved) {
      recordTransition(order.state, next.to);
      this.options.log.info({ orderId: order.id, from: order.state, to: next.to }, "saga moved");
    }
    return moved;
  }
}

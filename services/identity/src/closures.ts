import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { NotFoundError, PermissionDeniedError, serviceMeter, type Logger, type Principal, type ServiceContext } from "@meshwork/platform";
import { UserEvent_AccountClosedSchema, UserEvent_AccountClosureRequestedSchema } from "@meshwork/proto/meshwork/identity/v1/events_pb.js";
import type { Kysely, Transaction } from "kysely";
import type { IdentityConfig } from "./config.ts";
import { afterReport, awaiting, erasedEmail, isOverdue, type ClosureState } from "./domain/closure.ts";
import { userEvents } from "./events.ts";
import {
  countClosuresByState,
  eraseUser,
  findClosure,
  findUserById,
  insertClosure,
  pendingClosuresBefore,
  recordClosureReport,
  setClosureState,
  type ClosureRecord,
  type IdentityDatabase,
  type IdentityTables,
} from "./store.ts";

const CLOSURE_STATES: ClosureState[] = ["PENDING", "CLOSED", "STUCK"];

/**
 * identity's side of the account-closure choreography. It starts a closure (AccountClosureRequested)
 * and then only listens: each participant reacts to that event on its own and reports with an event
 * of its own, which identity's consumers hand to `recordReport`. Nothing here calls a participant.
 */
export class AccountClosures {
  private readonly context: ServiceContext<IdentityTables, IdentityConfig>;
  private readonly log: Logger;
  /** The participants whose reports close an account, by service name. */
  readonly expected: readonly string[];

  constructor(context: ServiceContext<IdentityTables, IdentityConfig>, expected: readonly string[]) {
    this.context = context;
    this.expected = expected;
    this.log = context.log.child({ component: "account-closure" });
    registerClosureGauge(context.database.db);
  }

  /** Starts closing `userId`'s account; a second request answers the closure already under way. */
  async request(userId: string, principal: Principal): Promise<ClosureRecord> {
    authorize(userId, principal);
    const user = await findUserById(this.context.database.db, userId);
    if (!user) throw new NotFoundError("no such user");
    await this.context.unitOfWork(async (trx) => {
      if (!(await insertClosure(trx, { userId, requestedAt: Date.now(), requestedBy: principal.userId }))) return;
      await userEvents.emit(trx, userId, {
        case: "accountClosureRequested",
        value: create(UserEvent_AccountClosureRequestedSchema, {
          userId,
          email: user.email,
          displayName: user.displayName,
          requestedBy: principal.userId,
          occurredAt: timestampNow(),
        }),
      });
    });
    this.log.info({ userId, requestedBy: principal.userId }, "account closure requested");
    return (await findClosure(this.context.database.db, userId))!;
  }

  async get(userId: string, principal: Principal): Promise<ClosureRecord> {
    authorize(userId, principal);
    const closure = await findClosure(this.context.database.db, userId);
    if (!closure) throw new NotFoundError("no closure was requested for this account");
    return closure;
  }

  /**
   * A participant has done its part (called by a consumer, in the transaction that records the
   * event). The last expected report closes the account: identity erases the personal data it
   * holds and announces AccountClosed, in the same transaction.
   */
  async recordReport(trx: Transaction<IdentityDatabase>, userId: string, participant: string): Promise<void> {
    const closure = await findClosure(trx, userId);
    if (!closure) {
      // Every participant reacts to identity's own request, so this is a report for a closure that
      // identity never recorded (a restored backup, a hand-published event): keep it visible.
      this.log.warn({ userId, participant }, "closure report for an account with no closure request");
      return;
    }
    await recordClosureReport(trx, userId, participant, Date.now());
    const reported = [...new Set([...closure.reported, participant])];
    if (closure.state === "CLOSED" || afterReport({ ...closure, reported }, this.expected) !== "CLOSED") return;
    const closedAt = Date.now();
    await setClosureState(trx, userId, "CLOSED", closedAt);
    await eraseUser(trx, userId, erasedEmail(userId));
    await userEvents.emit(trx, userId, { case: "accountClosed", value: create(UserEvent_AccountClosedSchema, { userId, occurredAt: timestampNow() }) });
    this.log.info({ userId, wasStuck: closure.state === "STUCK" }, "account closed: every participant reported");
  }

  /** Marks closures that waited longer than the timeout as STUCK, with whom they still await. */
  async markStuck(now = Date.now()): Promise<number> {
    const timeoutMs = this.context.config.ACCOUNT_CLOSURE_TIMEOUT_SECONDS * 1000;
    const db = this.context.database.db;
    let stuck = 0;
    for (const userId of await pendingClosuresBefore(db, now - timeoutMs)) {
      const closure = await findClosure(db, userId);
      if (!closure || !isOverdue(closure, now, timeoutMs)) continue;
      await setClosureState(db, userId, "STUCK", null);
      stuck++;
      this.log.error({ userId, awaiting: awaiting(this.expected, closure.reported) }, "account closure is stuck: a participant has not reported");
    }
    return stuck;
  }
}

/** The account's owner may close it, and an admin may close anyone's. */
function authorize(userId: string, principal: Principal): void {
  if (principal.userId !== userId && !principal.roles.includes("admin")) throw new PermissionDeniedError("only the account's owner or an admin may close it");
}

/** Closures by state at each scrape, from the database every replica shares; STUCK is alerted on. */
function registerClosureGauge(db: Kysely<IdentityDatabase>): void {
  serviceMeter.createObservableGauge("meshwork.identity.account_closures", { description: "Account closures by state (PENDING, CLOSED, STUCK)" }).addCallback(async (result) => {
    const counts = await countClosuresByState(db);
    for (const state of CLOSURE_STATES) result.observe(counts.get(state) ?? 0, { state });
  });
}

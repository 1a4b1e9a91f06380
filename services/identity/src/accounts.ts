import { availableParallelism } from "node:os";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampNow } from "@bufbuild/protobuf/wkt";
import { hash, verify } from "@node-rs/argon2";
import {
  AlreadyExistsError,
  Bounded,
  NotFoundError,
  ResourceExhaustedError,
  UnauthenticatedError,
  uuidv7,
  type Principal,
  type Role,
  type ServiceContext,
} from "@meshwork/platform";
import {
  UserEvent_RolesChangedSchema,
  UserEvent_SignedInSchema,
  UserEvent_SignedOutSchema,
  UserEvent_SignedUpSchema,
} from "@meshwork/proto/meshwork/identity/v1/events_pb.js";
import { trace, type Meter } from "@opentelemetry/api";
import type { Transaction } from "kysely";
import type { IdentityConfig } from "./config.ts";
import { canonicalEmail, checkPasswordPolicy, normaliseEmail, validateDisplayName } from "./domain/credentials.ts";
import { DEFAULT_ROLES, parseRoles } from "./domain/roles.ts";
import { FailureThrottle } from "./domain/throttle.ts";
import { userEvents } from "./events.ts";
import type { SigningKeys } from "./signing-keys.ts";
import { signAccessToken } from "./tokens.ts";
import { endSession, failureLog, findUserByEmail, findUserById, insertSession, insertUser, updateRoles, type IdentityDatabase, type IdentityTables, type UserRecord } from "./store.ts";

// @node-rs/argon2 exports Algorithm as a const enum, which type stripping cannot inline.
const ARGON2ID = 2;

export interface SignedIn {
  accessToken: string;
  expiresAt: Date;
  user: UserRecord;
}

/**
 * identity's use cases. Each state change and the event it causes commit together (unitOfWork +
 * the outbox); nothing here publishes directly.
 */
export class Accounts {
  private readonly context: ServiceContext<IdentityTables, IdentityConfig>;
  private readonly keys: SigningKeys;
  private readonly accountThrottle: FailureThrottle;
  private readonly addressThrottle: FailureThrottle;
  private readonly hashOptions;
  private readonly decoyHash: Promise<string>;
  /**
   * argon2id hashes in flight: as many as there are cores. Each holds ARGON2_MEMORY_KIB (19 MiB by
   * default) while it runs on libuv's pool of 4 threads; a fifth or more would queue there anyway,
   * and more than one per core only shares the cores, so the bound keeps the throughput and caps
   * the memory (identity's peak under sign-in load, docs/performance.md).
   */
  private readonly hashing = new Bounded(availableParallelism());
  readonly signIns;

  constructor(context: ServiceContext<IdentityTables, IdentityConfig>, keys: SigningKeys, meter: Meter) {
    const { config } = context;
    this.context = context;
    this.keys = keys;
    this.hashOptions = {
      algorithm: ARGON2ID,
      memoryCost: config.ARGON2_MEMORY_KIB,
      timeCost: config.ARGON2_ITERATIONS,
      parallelism: config.ARGON2_PARALLELISM,
    };
    const windowMs = config.THROTTLE_WINDOW_SECONDS * 1000;
    // In the shared database, so the limits hold across every identity replica.
    const log = failureLog(context.database.db);
    this.accountThrottle = new FailureThrottle({ log, scope: "account", limit: config.THROTTLE_ACCOUNT_FAILURES, windowMs });
    this.addressThrottle = new FailureThrottle({ log, scope: "address", limit: config.THROTTLE_ADDRESS_FAILURES, windowMs });
    // An unknown email is verified against this hash, so it costs the same time as a wrong password.
    this.decoyHash = this.hashing.run(() => hash(uuidv7(), this.hashOptions));
    this.signIns = meter.createCounter("meshwork.identity.sign_ins", { description: "Sign-in attempts, by outcome" });
  }

  async signUp(input: { email: string; password: string; displayName: string }, roles: Role[] = DEFAULT_ROLES): Promise<UserRecord> {
    const email = normaliseEmail(input.email);
    const displayName = validateDisplayName(input.displayName);
    checkPasswordPolicy(input.password, this.context.config.PASSWORD_MIN_LENGTH);
    if (await findUserByEmail(this.context.database.db, email)) throw new AlreadyExistsError("an account with this email exists");
    const user: UserRecord = { id: uuidv7(), email, displayName, passwordHash: await this.hashing.run(() => hash(input.password, this.hashOptions)), roles };
    await this.context.unitOfWork(async (trx) => {
      if (!(await insertUser(trx, user))) throw new AlreadyExistsError("an account with this email exists");
      await userEvents.emit(trx, user.id, {
        case: "signedUp",
        value: create(UserEvent_SignedUpSchema, { userId: user.id, email, displayName, occurredAt: timestampNow() }),
      });
    });
    return user;
  }

  async signIn(input: { email: string; password: string }, clientAddress: string): Promise<SignedIn> {
    // Canonical, not validated: sign-in tells an attacker nothing about what an address may be.
    const email = canonicalEmail(input.email);
    const account = await this.accountThrottle.check(email);
    const wait = Math.max(account.retryAfterSeconds, await this.addressThrottle.retryAfterSeconds(clientAddress));
    if (wait > 0) {
      this.signIns.add(1, { outcome: "throttled" });
      throw new ResourceExhaustedError(`too many failed sign-ins; retry in ${wait} s`, wait);
    }
    const user = await findUserByEmail(this.context.database.db, email);
    const stored = user?.passwordHash ?? (await this.decoyHash);
    // The hash goes to its pool thread first, so that everything below up to the await runs
    // while it does (docs/performance.md, sixth round).
    const verifying = this.hashing.run(() => verify(stored, input.password)).catch(() => false);
    const sessionId = uuidv7();
    const expiresAt = new Date(Date.now() + this.context.config.ACCESS_TOKEN_TTL_SECONDS * 1000);
    // The token is signed while the hash runs, on another pool thread, instead of after it: the
    // ES256 signature then costs a sign-in no time (docs/performance.md, fifth round). It leaves
    // this function only once the password has verified; otherwise it is dropped unseen.
    const signing = user && !user.closureRequestedAt ? this.issueToken(user, sessionId, expiresAt) : undefined;
    signing?.catch(() => undefined); // a failed attempt never awaits it; a success rethrows below
    const valid = await verifying;
    // An account being closed answers as a wrong password: no token, no SignedIn.
    if (!user || !valid || !signing) {
      await Promise.all([this.accountThrottle.recordFailure(email), this.addressThrottle.recordFailure(clientAddress)]);
      this.signIns.add(1, { outcome: "invalid_credentials" });
      throw new UnauthenticatedError("invalid email or password");
    }
    // Nothing to clear when the check saw no failure in the window (one write less per sign-in).
    if (account.failures > 0) await this.accountThrottle.reset(email);
    const accessToken = await signing;
    await this.context.unitOfWork((trx) => recordSignIn(trx, user, sessionId, expiresAt.getTime()));
    this.signIns.add(1, { outcome: "success" });
    this.context.log.info({ userId: user.id, sessionId }, "signed in");
    return { accessToken, expiresAt, user };
  }

  /** Ends the caller's session; signing out twice is not an error and emits nothing the second time. */
  async signOut(principal: Principal): Promise<void> {
    const user = await findUserById(this.context.database.db, principal.userId);
    if (!user) return;
    await this.context.unitOfWork(async (trx) => {
      if (!(await endSession(trx, principal.sessionId, principal.userId))) return;
      await userEvents.emit(trx, user.id, {
        case: "signedOut",
        value: create(UserEvent_SignedOutSchema, { userId: user.id, email: user.email, sessionId: principal.sessionId, occurredAt: timestampNow() }),
      });
    });
  }

  async setRoles(userId: string, rawRoles: readonly string[], changedBy: Principal): Promise<UserRecord> {
    const roles = parseRoles(rawRoles);
    const user = await findUserById(this.context.database.db, userId);
    if (!user) throw new NotFoundError("no such user");
    await this.context.unitOfWork(async (trx) => {
      await updateRoles(trx, user.id, roles);
      await userEvents.emit(trx, user.id, {
        case: "rolesChanged",
        value: create(UserEvent_RolesChangedSchema, { userId: user.id, email: user.email, roles, changedBy: changedBy.userId, occurredAt: timestampNow() }),
      });
    });
    return { ...user, roles };
  }

  /** The first admin, from MESHWORK_ADMIN_EMAIL / MESHWORK_ADMIN_PASSWORD, created once. */
  async ensureAdmin(email: string | undefined, password: string | undefined): Promise<void> {
    if (!email || !password) return;
    if (await findUserByEmail(this.context.database.db, normaliseEmail(email))) return;
    // In a span of its own, so the admin's SignedUp event carries a trace id like every other event.
    await trace.getTracer("identity").startActiveSpan("bootstrap admin", async (span) => {
      await this.signUp({ email, password, displayName: "Administrator" }, ["admin"]).finally(() => span.end());
    });
    this.context.log.info({ email }, "created the admin user");
  }

  private issueToken(user: UserRecord, sessionId: string, expiresAt: Date): Promise<string> {
    return signAccessToken(this.keys, this.context.config, { subject: user.id, tokenId: sessionId, expiresAt, claims: { roles: user.roles } });
  }
}

/**
 * What a successful sign-in commits, in the caller's transaction: its session, and the SignedIn
 * event that the outbox publishes after the commit. Exported for bench/workers/signin-db.ts,
 * which times these same statements.
 */
export async function recordSignIn(trx: Transaction<IdentityDatabase>, user: UserRecord, sessionId: string, expiresAtMs: number): Promise<void> {
  await insertSession(trx, { id: sessionId, userId: user.id, expiresAt: expiresAtMs });
  await userEvents.emit(trx, user.id, {
    case: "signedIn",
    value: create(UserEvent_SignedInSchema, {
      userId: user.id,
      email: user.email,
      displayName: user.displayName,
      sessionId,
      expiresAt: timestampFromMs(expiresAtMs),
      authMethod: "password",
      occurredAt: timestampNow(),
    }),
  });
}

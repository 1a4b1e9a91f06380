import { context, SpanKind, SpanStatusCode, trace, type Attributes } from "@opentelemetry/api";
import type { CompiledQuery, DatabaseConnection, Dialect, Driver, Kysely, QueryCompiler, QueryResult, TransactionSettings } from "kysely";
import { platformTracer } from "../recorded-span.ts";
import { spanMayRecord } from "../tracing-policy.ts";
import type { DatabaseKind } from "./database.ts";

const tracer = platformTracer("@meshwork/platform/db");

/**
 * Wraps a Kysely dialect so each statement runs in a CLIENT span with the database semantic
 * conventions. The span gets the SQL text with its placeholders, never the parameter values.
 */
export function tracedDialect(dialect: Dialect, kind: DatabaseKind, namespace = "meshwork"): Dialect {
  // Kysely's constructor asks for its adapter and its driver once each: they are paired here so
  // that directConnection() can find a Kysely instance's driver from its executor's adapter.
  let unpairedAdapter: object | undefined;
  let unpairedDriver: TracedDriver | undefined;
  const pair = () => {
    if (unpairedAdapter && unpairedDriver) {
      driversByAdapter.set(unpairedAdapter, unpairedDriver);
      unpairedAdapter = unpairedDriver = undefined;
    }
  };
  return {
    createAdapter: () => {
      const adapter = dialect.createAdapter();
      unpairedAdapter = adapter;
      pair();
      return adapter;
    },
    createIntrospector: (db) => dialect.createIntrospector(db),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createDriver: () => {
      unpairedDriver = new TracedDriver(dialect.createDriver(), kind === "postgres" ? "postgresql" : "sqlite", namespace);
      pair();
      return unpairedDriver;
    },
  };
}

const driversByAdapter = new WeakMap<object, TracedDriver>();

/**
 * The connection a single statement may run on right now without Kysely's executor, or undefined
 * when it must go through Kysely (`db.executeQuery`). Only for SQLite, whose one connection
 * executes a statement synchronously:
 * - outside a transaction, when no one holds the connection or waits for it (no transaction open,
 *   no statement in flight): a statement run on it at once is exactly what Kysely's executor would
 *   run after taking and giving back the connection's lock, minus a dozen promises;
 * - inside a transaction (`db` is a Transaction), while a transaction is open on it: the
 *   transaction holds SQLite's only connection, so that is where Kysely would run the statement,
 *   after its single-connection provider's own promise chain. Once the transaction has ended the
 *   statement goes through Kysely, as before.
 * Never with Kysely plugins (their result transforms would be skipped). The statement still gets
 * its CLIENT span.
 */
export function directConnection(db: Kysely<any>): DatabaseConnection | undefined {
  const executor = db.getExecutor();
  if (executor.plugins.length > 0) return undefined;
  const driver = driversByAdapter.get(executor.adapter);
  return db.isTransaction ? driver?.transactionConnection() : driver?.idleConnection();
}

class TracedDriver implements Driver {
  private readonly inner: Driver;
  private readonly system: string;
  private readonly namespace: string;
  /** One wrapper per connection, kept with its span shapes (a pool hands out the same few). */
  private readonly wrappers = new WeakMap<DatabaseConnection, TracedConnection>();
  /** Acquisitions asked for and not yet released (waiting for the lock included). */
  private held = 0;
  /** SQLite's only connection, once Kysely has asked for it. */
  private sqliteConnection: TracedConnection | undefined;
  /** Between a transaction's begin and its commit or rollback (SQLite has one connection, so one transaction). */
  private transactionOpen = false;
  constructor(inner: Driver, system: string, namespace: string) {
    this.inner = inner;
    this.system = system;
    this.namespace = namespace;
  }
  init(): Promise<void> {
    return this.inner.init();
  }
  idleConnection(): TracedConnection | undefined {
    return this.held === 0 ? this.sqliteConnection : undefined;
  }
  transactionConnection(): TracedConnection | undefined {
    return this.transactionOpen ? this.sqliteConnection : undefined;
  }
  async acquireConnection(): Promise<DatabaseConnection> {
    this.held++;
    let inner: DatabaseConnection;
    try {
      inner = await this.inner.acquireConnection();
    } catch (error) {
      this.held--;
      throw error;
    }
    let wrapper = this.wrappers.get(inner);
    if (!wrapper) {
      wrapper = new TracedConnection(inner, this.system, this.namespace);
      this.wrappers.set(inner, wrapper);
    }
    if (this.system === "sqlite") this.sqliteConnection = wrapper;
    return wrapper;
  }
  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    await this.inner.beginTransaction(unwrap(connection), settings);
    this.transactionOpen = connection === this.sqliteConnection;
  }
  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    // Closed before the commit runs: a statement issued meanwhile must not count on the transaction.
    this.transactionOpen = false;
    await this.inner.commitTransaction(unwrap(connection));
  }
  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    this.transactionOpen = false;
    await this.inner.rollbackTransaction(unwrap(connection));
  }
  // Savepoints let the consumer apply a batch in one transaction with each event isolated.
  async savepoint(connection: DatabaseConnection, name: string, compileQuery: QueryCompiler["compileQuery"]): Promise<void> {
    await this.inner.savepoint!(unwrap(connection), name, compileQuery);
  }
  async rollbackToSavepoint(connection: DatabaseConnection, name: string, compileQuery: QueryCompiler["compileQuery"]): Promise<void> {
    await this.inner.rollbackToSavepoint!(unwrap(connection), name, compileQuery);
  }
  async releaseSavepoint(connection: DatabaseConnection, name: string, compileQuery: QueryCompiler["compileQuery"]): Promise<void> {
    await this.inner.releaseSavepoint!(unwrap(connection), name, compileQuery);
  }
  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    try {
      await this.inner.releaseConnection(unwrap(connection));
    } finally {
      this.held--;
    }
  }
  destroy(): Promise<void> {
    this.sqliteConnection = undefined;
    this.transactionOpen = false;
    return this.inner.destroy();
  }
}

class TracedConnection implements DatabaseConnection {
  readonly inner: DatabaseConnection;
  private readonly system: string;
  private readonly namespace: string;
  /** Span name and attributes per SQL text: a service runs the same few dozen statements. */
  private readonly spanShapes = new Map<string, { name: string; attributes: Attributes }>();
  constructor(inner: DatabaseConnection, system: string, namespace: string) {
    this.inner = inner;
    this.system = system;
    this.namespace = namespace;
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    // Transaction control (a consumer's per-event savepoints) is not traced, as begin and commit are not.
    if (untracedQueries.has(compiledQuery)) return this.inner.executeQuery<R>(compiledQuery);
    const active = context.active();
    if (!spanMayRecord(trace.getSpan(active))) return this.inner.executeQuery<R>(compiledQuery);
    const shape = this.spanShape(compiledQuery);
    // Not made active: nothing runs inside a statement that could start a child span.
    const span = tracer.startSpan(shape.name, SpanKind.CLIENT, shape.attributes, active);
    try {
      return await this.inner.executeQuery<R>(compiledQuery);
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).name });
      throw error;
    } finally {
      span.end();
    }
  }

  streamQuery<R>(compiledQuery: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(compiledQuery, chunkSize ?? 100);
  }

  private spanShape(compiledQuery: CompiledQuery): { name: string; attributes: Attributes } {
    let shape = this.spanShapes.get(compiledQuery.sql);
    if (!shape) {
      const operation = operationOf(compiledQuery);
      shape = {
        name: `${operation} ${this.namespace}`,
        // Frozen: every span of this statement starts with this one set (recorded-span.ts).
        attributes: Object.freeze({
          "db.system": this.system,
          "db.system.name": this.system,
          "db.namespace": this.namespace,
          "db.operation.name": operation,
          "db.query.text": compiledQuery.sql,
        }),
      };
      // Dynamic SQL (IN lists of varying length) must not grow the map without bound.
      if (this.spanShapes.size >= 1_000) this.spanShapes.clear();
      this.spanShapes.set(compiledQuery.sql, shape);
    }
    return shape;
  }
}

const untracedQueries = new WeakSet<CompiledQuery>();

/** Marks a constant statement (a savepoint command) so that no span is made for it. */
export function untraced<Q extends CompiledQuery>(query: Q): Q {
  untracedQueries.add(query);
  return query;
}

function unwrap(connection: DatabaseConnection): DatabaseConnection {
  return connection instanceof TracedConnection ? connection.inner : connection;
}

function operationOf(compiledQuery: CompiledQuery): string {
  const kind = compiledQuery.query.kind;
  const known: Record<string, string> = {
    SelectQueryNode: "SELECT",
    InsertQueryNode: "INSERT",
    UpdateQueryNode: "UPDATE",
    DeleteQueryNode: "DELETE",
  };
  return known[kind] ?? compiledQuery.sql.trim().split(/\s+/, 1)[0]!.toUpperCase();
}

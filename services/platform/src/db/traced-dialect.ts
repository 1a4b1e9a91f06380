import { SpanKind, SpanStatusCode, trace, type Attributes } from "@opentelemetry/api";
import type { CompiledQuery, DatabaseConnection, Dialect, Driver, QueryCompiler, QueryResult, TransactionSettings } from "kysely";
import { leafSpanMayRecord } from "../tracing-policy.ts";
import type { DatabaseKind } from "./database.ts";

const tracer = trace.getTracer("@meshwork/platform/db");

/**
 * Wraps a Kysely dialect so each statement runs in a CLIENT span with the database semantic
 * conventions. The span gets the SQL text with its placeholders, never the parameter values.
 */
export function tracedDialect(dialect: Dialect, kind: DatabaseKind, namespace = "meshwork"): Dialect {
  return {
    createAdapter: () => dialect.createAdapter(),
    createIntrospector: (db) => dialect.createIntrospector(db),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createDriver: () => new TracedDriver(dialect.createDriver(), kind === "postgres" ? "postgresql" : "sqlite", namespace),
  };
}

class TracedDriver implements Driver {
  private readonly inner: Driver;
  private readonly system: string;
  private readonly namespace: string;
  constructor(inner: Driver, system: string, namespace: string) {
    this.inner = inner;
    this.system = system;
    this.namespace = namespace;
  }
  init(): Promise<void> {
    return this.inner.init();
  }
  async acquireConnection(): Promise<DatabaseConnection> {
    return new TracedConnection(await this.inner.acquireConnection(), this.system, this.namespace);
  }
  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return this.inner.beginTransaction(unwrap(connection), settings);
  }
  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.commitTransaction(unwrap(connection));
  }
  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.rollbackTransaction(unwrap(connection));
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
  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.inner.releaseConnection(unwrap(connection));
  }
  destroy(): Promise<void> {
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
    if (untracedQueries.has(compiledQuery) || !leafSpanMayRecord(trace.getActiveSpan())) return this.inner.executeQuery<R>(compiledQuery);
    const shape = this.spanShape(compiledQuery);
    // Not made active: nothing runs inside a statement that could start a child span.
    const span = tracer.startSpan(shape.name, { kind: SpanKind.CLIENT, attributes: shape.attributes });
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
        attributes: {
          "db.system": this.system,
          "db.system.name": this.system,
          "db.namespace": this.namespace,
          "db.operation.name": operation,
          "db.query.text": compiledQuery.sql,
        },
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

import fs from "node:fs";
import path from "node:path";
import SQLite from "better-sqlite3";
import { Migrator, type Migration } from "kysely/migration";
import {
  Kysely,
  PostgresDialect,
  SqliteDialect,
  sql,
  type Dialect,
  type Generated,
  type SqliteDatabase,
} from "kysely";
import { tracedDialect } from "./traced-dialect.ts";

export type DatabaseKind = "sqlite" | "postgres";

/** Tables the platform adds to every service's database: the outbox and the consumer inbox. */
export interface PlatformTables {
  outbox: {
    seq: Generated<number>;
    id: string;
    subject: string;
    type: string;
    aggregate_id: string;
    payload: Uint8Array;
    traceparent: string | null;
    tracestate: string | null;
    created_at: number;
    published_at: number | null;
  };
  processed_events: {
    consumer: string;
    event_id: string;
    processed_at: number;
  };
}

export interface Database<Tables> {
  db: Kysely<Tables & PlatformTables>;
  kind: DatabaseKind;
  /** Cheap round trip used by /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type Migrations = Record<string, Migration>;


/**
 * Opens a service's own database: SQLite (embedded default) for a file path or `sqlite:` URL,
 * PostgreSQL for a `postgres://` URL. Runs the platform's and the service's migrations.
 */
export async function openDatabase<Tables>(
  url: string,
  serviceMigrations: Migrations,
  options: { system?: string } = {},
): Promise<Database<Tables>> {
  const { dialect, kind } = await dialectFor(url);
  const db = new Kysely<Tables & PlatformTables>({ dialect: tracedDialect(dialect, kind, options.system) });
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => ({ ...platformMigrations(kind), ...serviceMigrations }) },
  });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((result: { status: string }) => result.status === "Error");
  if (error || failed) {
    await db.destroy();
    throw new Error(`migration ${failed?.migrationName ?? ""} failed: ${String(error)}`);
  }
  return {
    db,
    kind,
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    close: () => db.destroy(),
  };
}

async function dialectFor(url: string): Promise<{ dialect: Dialect; kind: DatabaseKind }> {
  if (/^postgres(ql)?:\/\//.test(url)) {
    // Loaded only when used: a SQLite service need not carry the PostgreSQL driver in memory.
    const { default: pg } = await import("pg");
    // PostgreSQL returns BIGINT as a string to avoid precision loss; our bigints are epoch millis
    // and sequence numbers, which fit in a double.
    pg.types.setTypeParser(20, (value: string) => Number(value));
    return { dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 10 }) }), kind: "postgres" };
  }
  const file = url.replace(/^sqlite:(\/\/)?/, "");
  if (file !== ":memory:") fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const database = new SQLite(file);
  // WAL lets readers proceed during a write; NORMAL sync keeps a commit durable across a process
  // crash (the case our fault tests exercise) without an fsync per transaction.
  database.pragma("journal_mode = WAL");
  database.pragma("synchronous = NORMAL");
  database.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
  database.pragma("busy_timeout = 5000");
  database.pragma("foreign_keys = ON");
  return { dialect: new SqliteDialect({ database: withStatementCache(database) }), kind: "sqlite" };
}

/**
 * SQLite checkpoints the WAL inside the commit that takes it past this many pages, on the event
 * loop: it syncs the WAL, copies its pages into the database file and syncs that, 10-15 µs per
 * page here (`bench/workers/consumer-loop.ts checkpoint`). At SQLite's default of 1,000 pages a
 * consumer committing one event at a time (~7 pages each) stalled ~10 ms every ~145 events, and
 * every event arriving meanwhile waited: the tail of the pipeline at 1,000 events/s. A quarter of
 * that stalls ~4 ms four times as often, for the same work in all (docs/performance.md, fifth
 * round). A checkpoint in a worker thread with its own connection would take it off the event
 * loop altogether, but a worker thread costs ~15 MiB of resident memory per service (measured).
 */
export const WAL_AUTOCHECKPOINT_PAGES = 250;

/**
 * Kysely prepares every query afresh; a service runs the same few dozen SQL texts over and over,
 * so compiled statements are kept and reused (bench/pipeline.ts measured the difference).
 */
function withStatementCache(database: SQLite.Database): SqliteDatabase {
  const statements = new Map<string, SQLite.Statement>();
  return {
    close: () => database.close(),
    prepare(sqlText: string) {
      let statement = statements.get(sqlText);
      if (!statement) {
        // Dynamic SQL (IN lists of varying length) must not grow the cache without bound.
        if (statements.size >= 1_000) statements.clear();
        statement = database.prepare(sqlText);
        statements.set(sqlText, statement);
      }
      return statement as unknown as ReturnType<SqliteDatabase["prepare"]>;
    },
  };
}

function platformMigrations(kind: DatabaseKind): Migrations {
  const serial = kind === "postgres" ? sql`bigserial primary key` : sql`integer primary key autoincrement`;
  const bytes = kind === "postgres" ? "bytea" : "blob";
  return {
    "0000_platform_outbox_and_inbox": {
      async up(db: Kysely<unknown>) {
        await sql`create table outbox (
          seq ${serial},
          id text not null unique,
          subject text not null,
          type text not null,
          aggregate_id text not null,
          payload ${sql.raw(bytes)} not null,
          traceparent text,
          tracestate text,
          created_at bigint not null,
          published_at bigint
        )`.execute(db);
        await sql`create index outbox_pending on outbox (published_at, seq)`.execute(db);
        await db.schema
          .createTable("processed_events")
          .addColumn("consumer", "text", (column) => column.notNull())
          .addColumn("event_id", "text", (column) => column.notNull())
          .addColumn("processed_at", "bigint", (column) => column.notNull())
          .addPrimaryKeyConstraint("processed_events_pk", ["consumer", "event_id"])
          .execute();
      },
    },
  };
}

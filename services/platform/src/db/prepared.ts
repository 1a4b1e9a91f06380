import type { Compilable, CompiledQuery, Kysely, QueryResult } from "kysely";
import { directConnection } from "./traced-dialect.ts";

/** A query built and compiled once, run with new values: see preparedQuery. */
export interface PreparedQuery<DB, Args extends unknown[], Row> {
  execute(db: Kysely<DB>, ...args: Args): Promise<QueryResult<Row>>;
}

/**
 * Kysely builds and compiles a query anew on every execution; for the short statements of a hot
 * loop (a consumer's inbox row, a projection's insert) that costs more than the database's own
 * work (docs/performance.md measured it). `build` is run once per dialect with a placeholder for
 * each argument, and every later call only binds the values: the SQL text is the one Kysely would
 * have compiled, and the statement cache of the SQLite driver (db/database.ts) keeps it prepared.
 * On SQLite it runs on the connection directly, without Kysely's executor, both outside a
 * transaction when the connection is idle and inside an open transaction (traced-dialect.ts
 * `directConnection`): the executor's connection provider, lock and result pass were most of what
 * a prepared statement cost beyond SQLite's own work (docs/performance.md, fifth and sixth rounds).
 *
 * An argument may only be used as a single value (Kysely sends it as one parameter): not as a
 * list for `in`, a table or column name, or in arithmetic. A use that does not end up as a
 * parameter is refused the first time the query runs.
 */
export function preparedQuery<DB, Args extends unknown[], Row>(
  build: (db: Kysely<DB>, ...args: Args) => Compilable<Row>,
): PreparedQuery<DB, Args, Row> {
  // Per Kysely adapter, i.e. per dialect: PostgreSQL numbers its placeholders, SQLite does not.
  const compiled = new WeakMap<object, { query: CompiledQuery<Row>; slots: Slot[] }>();
  return {
    async execute(db, ...args) {
      const adapter = db.getExecutor().adapter;
      let entry = compiled.get(adapter);
      if (!entry) {
        entry = compile(db, build, args.length);
        compiled.set(adapter, entry);
      }
      const parameters = entry.slots.map((slot) => ("argument" in slot ? args[slot.argument] : slot.constant));
      const query: CompiledQuery<Row> = { ...entry.query, parameters };
      // SQLite's connection, when it is free or is this transaction's, runs the statement at once (traced-dialect.ts).
      const connection = directConnection(db);
      return connection ? await connection.executeQuery<Row>(query) : await db.executeQuery<Row>(query);
    },
  };
}

/** Where a compiled parameter comes from: one of the call's arguments, or a value fixed in `build`. */
type Slot = { argument: number } | { constant: unknown };

function compile<DB, Args extends unknown[], Row>(db: Kysely<DB>, build: (db: Kysely<DB>, ...args: Args) => Compilable<Row>, arity: number) {
  const placeholders = Array.from({ length: arity }, (_, index) => `\u0000prepared-argument-${index}\u0000`);
  const query = build(db, ...(placeholders as Args)).compile();
  const used = new Set<number>();
  const slots: Slot[] = query.parameters.map((value) => {
    const argument = placeholders.indexOf(value as string);
    if (argument === -1) return { constant: value };
    used.add(argument);
    return { argument };
  });
  const unbound = placeholders.findIndex((placeholder, index) => !used.has(index) || query.sql.includes(placeholder));
  if (unbound !== -1) throw new Error(`prepared query: argument ${unbound} is not used as a parameter value in: ${query.sql}`);
  return { query, slots };
}

/**
 * Experiment only, never used by the services themselves: loaded into a service with
 * `--import ./bench/lib/statement-cache-preload.ts` it memoises better-sqlite3's `prepare(sql)`
 * per connection, so Kysely's SQLite driver reuses a compiled statement instead of compiling the
 * same SQL on every execution. It shows what a statement cache in the platform would be worth.
 * Safe for how the platform uses SQLite (one connection, no concurrent iterate() on a statement).
 */
import Database from "better-sqlite3";

type Prepare = (this: Database.Database, sql: string) => Database.Statement;
const prepare = Database.prototype.prepare as Prepare;
const caches = new WeakMap<Database.Database, Map<string, Database.Statement>>();
Database.prototype.prepare = function (this: Database.Database, sql: string) {
  let cache = caches.get(this);
  if (!cache) caches.set(this, (cache = new Map()));
  let statement = cache.get(sql);
  if (!statement) {
    statement = prepare.call(this, sql);
    if (cache.size < 500) cache.set(sql, statement);
  }
  return statement;
} as typeof Database.prototype.prepare;

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { sql, type Kysely } from "kysely";
import { openDatabase, WAL_AUTOCHECKPOINT_PAGES, type Database } from "../../src/db/database.ts";

interface Rows {
  rows_written: { id: number; body: string };
}

describe("the SQLite database", () => {
  let dir: string;
  let database: Database<Rows>;
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "database-spec-"));
    database = await openDatabase<Rows>(path.join(dir, "service.db"), {
      "0001_rows": {
        async up(db: Kysely<unknown>) {
          await sql`create table rows_written (id integer primary key, body text not null)`.execute(db);
        },
      },
    });
  });
  afterEach(async () => {
    await database.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("runs in WAL mode and checkpoints in small steps, so no commit stalls on a long checkpoint", async () => {
    const setting = async (pragma: string) => Object.values((await sql.raw<Record<string, unknown>>(`pragma ${pragma}`).execute(database.db)).rows[0]!)[0];
    assert.equal(await setting("journal_mode"), "wal");
    assert.equal(await setting("wal_autocheckpoint"), WAL_AUTOCHECKPOINT_PAGES);
    const pageSize = Number(await setting("page_size"));
    // One commit per row, each touching a page or two: thousands of WAL frames in all.
    for (let id = 1; id <= 3_000; id++) await database.db.insertInto("rows_written").values({ id, body: "x".repeat(200) }).execute();
    // The WAL file is reused from its start after each checkpoint, so its size is the most it ever held.
    const walPages = fs.statSync(path.join(dir, "service.db-wal")).size / (pageSize + 24);
    assert.ok(walPages < WAL_AUTOCHECKPOINT_PAGES + 20, `the WAL held ${walPages.toFixed(0)} pages, SQLite's default would let it reach 1,000`);
    assert.equal(Number((await sql<{ n: number }>`select count(*) as n from rows_written`.execute(database.db)).rows[0]!.n), 3_000);
  });
});

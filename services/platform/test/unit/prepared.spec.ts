import assert from "node:assert/strict";
import {
  CompiledQuery,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type Driver,
  type KyselyPlugin,
  type QueryResult,
} from "kysely";
import { openDatabase, type Database } from "../../src/db/database.ts";
import { preparedQuery } from "../../src/db/prepared.ts";

interface Tables {
  people: { id: string; name: string; age: number };
}

describe("prepared queries", () => {
  let database: Database<Tables>;
  const db = () => database.db as unknown as Kysely<Tables>;

  beforeEach(async () => {
    database = await openDatabase<Tables>("sqlite::memory:", {
      "0001_people": {
        up: async (schema: Kysely<unknown>) =>
          void (await schema.schema.createTable("people").addColumn("id", "text", (column) => column.primaryKey()).addColumn("name", "text").addColumn("age", "integer").execute()),
      },
    });
  });
  afterEach(() => database.close());

  const insertPerson = preparedQuery((db: Kysely<Tables>, id: string, name: string, age: number) =>
    db.insertInto("people").values({ id, name, age }).onConflict((conflict) => conflict.column("id").doNothing()),
  );
  const olderThan = preparedQuery((db: Kysely<Tables>, age: number) => db.selectFrom("people").select(["id", "name"]).where("age", ">", age).where("name", "!=", "nobody").orderBy("id"));

  it("runs with each call's values, as the built query would, constants kept", async () => {
    assert.equal((await insertPerson.execute(db(), "a", "Ada", 36)).numAffectedRows, 1n);
    assert.equal((await insertPerson.execute(db(), "b", "Bob", 20)).numAffectedRows, 1n);
    assert.equal((await insertPerson.execute(db(), "a", "Ada again", 99)).numAffectedRows, 0n, "on conflict do nothing");
    await insertPerson.execute(db(), "n", "nobody", 50);
    assert.deepEqual((await olderThan.execute(db(), 30)).rows, [{ id: "a", name: "Ada" }]);
    assert.deepEqual((await olderThan.execute(db(), 10)).rows, [
      { id: "a", name: "Ada" },
      { id: "b", name: "Bob" },
    ]);
    assert.deepEqual((await olderThan.execute(db(), 30)).rows, await db().selectFrom("people").select(["id", "name"]).where("age", ">", 30).where("name", "!=", "nobody").orderBy("id").execute());
  });

  it("runs inside a transaction, and is rolled back with it", async () => {
    await db()
      .transaction()
      .execute(async (trx) => {
        await insertPerson.execute(trx, "t", "Tess", 40);
        assert.equal((await olderThan.execute(trx, 30)).rows.length, 1);
        throw new Error("roll back");
      })
      .catch(() => undefined);
    assert.deepEqual((await olderThan.execute(db(), 0)).rows, []);
  });

  /** Counts the statements that went through Kysely's executor (its connection provider). */
  const countExecutorUse = (kysely: Kysely<Tables>) => {
    const executor = kysely.getExecutor();
    const provideConnection = executor.provideConnection.bind(executor);
    const used = { count: 0 };
    executor.provideConnection = (consumer) => (used.count++, provideConnection(consumer));
    return used;
  };

  it("outside a transaction on SQLite, runs on the idle connection without Kysely's executor, with the same answer", async () => {
    await insertPerson.execute(db(), "a", "Ada", 36);
    const used = countExecutorUse(db());
    assert.deepEqual((await olderThan.execute(db(), 30)).rows, [{ id: "a", name: "Ada" }]);
    assert.equal((await insertPerson.execute(db(), "b", "Bob", 20)).numAffectedRows, 1n);
    assert.equal(used.count, 0);
  });

  it("inside an open transaction on SQLite, runs on the transaction's connection without Kysely's executor, and not once it has ended", async () => {
    const trx = await db().startTransaction().execute();
    const used = countExecutorUse(trx);
    assert.equal((await insertPerson.execute(trx, "t", "Tess", 40)).numAffectedRows, 1n);
    assert.deepEqual((await olderThan.execute(trx, 30)).rows, [{ id: "t", name: "Tess" }], "it sees the transaction's own write");
    assert.equal(used.count, 0);
    await trx.rollback().execute();
    assert.deepEqual((await olderThan.execute(db(), 0)).rows, [], "and its write went with the rollback");
    // Directly on the connection it would run outside any transaction; through Kysely it is refused.
    await assert.rejects(insertPerson.execute(trx, "u", "Uma", 50), /rolled back/);
    assert.equal(used.count, 1);
    assert.deepEqual((await olderThan.execute(db(), 0)).rows, []);
  });

  it("waits for an open transaction instead of reading inside it", async () => {
    let commit!: () => void;
    const committing = new Promise<void>((resolve) => (commit = resolve));
    let inserted!: () => void;
    const insertedInTransaction = new Promise<void>((resolve) => (inserted = resolve));
    const transaction = db()
      .transaction()
      .execute(async (trx) => {
        await insertPerson.execute(trx, "t", "Tess", 40);
        inserted();
        await committing;
      });
    await insertedInTransaction;
    let answered = false;
    const reading = olderThan.execute(db(), 30).then((result) => ((answered = true), result));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(answered, false, "the statement waits for the connection");
    commit();
    await transaction;
    assert.deepEqual((await reading).rows, [{ id: "t", name: "Tess" }], "and then sees what was committed");
  });

  it("goes through Kysely's executor when plugins may transform its result", async () => {
    await insertPerson.execute(db(), "a", "Ada", 36);
    const shouting: KyselyPlugin = {
      transformQuery: (args) => args.node,
      transformResult: async (args) => ({ ...args.result, rows: args.result.rows.map((row) => ({ ...row, name: String(row["name"]).toUpperCase() })) }),
    };
    const withPlugin = db().withPlugin(shouting);
    assert.deepEqual((await olderThan.execute(withPlugin, 30)).rows, [{ id: "a", name: "ADA" }]);
  });

  it("compiles once per dialect, binding where each numbers its placeholders", async () => {
    const executed: CompiledQuery[] = [];
    const postgres = new Kysely<Tables>({
      dialect: {
        createAdapter: () => new PostgresAdapter(),
        createDriver: () => capturingDriver(executed),
        createIntrospector: (kysely) => new PostgresIntrospector(kysely),
        createQueryCompiler: () => new PostgresQueryCompiler(),
      },
    });
    await olderThan.execute(postgres, 30);
    await olderThan.execute(postgres, 31);
    await olderThan.execute(db(), 32);
    assert.deepEqual(
      executed.map((query) => [query.sql, query.parameters]),
      [
        ['select "id", "name" from "people" where "age" > $1 and "name" != $2 order by "id"', [30, "nobody"]],
        ['select "id", "name" from "people" where "age" > $1 and "name" != $2 order by "id"', [31, "nobody"]],
      ],
    );
  });

  it("refuses an argument that does not end up as a parameter value", async () => {
    const byTable = preparedQuery((db: Kysely<Tables>, table: string) => db.selectFrom(table as "people").selectAll());
    await assert.rejects(byTable.execute(db(), "people"), /argument 0 is not used as a parameter value/);
    const unused = preparedQuery((db: Kysely<Tables>, _id: string) => db.selectFrom("people").selectAll());
    await assert.rejects(unused.execute(db(), "a"), /argument 0 is not used as a parameter value/);
  });
});

/** A driver that records what it is asked to run and answers with no rows. */
function capturingDriver(executed: CompiledQuery[]): Driver {
  const connection: DatabaseConnection = {
    executeQuery: async <R>(query: CompiledQuery): Promise<QueryResult<R>> => {
      executed.push(query);
      return { rows: [] };
    },
    streamQuery: () => {
      throw new Error("not used");
    },
  };
  return {
    init: async () => {},
    acquireConnection: async () => connection,
    beginTransaction: async () => {},
    commitTransaction: async () => {},
    rollbackTransaction: async () => {},
    releaseConnection: async () => {},
    destroy: async () => {},
  };
}

import assert from "node:assert/strict";
import { openDatabase, type Database } from "@meshwork/platform";
import { addSession, closeAccount, endSession, liveSessions, migrations, type PresenceTables } from "../../src/store.ts";
import type { OnlineSession } from "../../src/domain/online.ts";

const session = (sessionId: string, userId = "ada"): OnlineSession => ({
  sessionId,
  userId,
  email: `${userId}@example.com`,
  displayName: userId.toUpperCase(),
  startedAt: 1_000,
  expiresAt: 5_000,
});

describe("presence's projection store", () => {
  let database: Database<PresenceTables>;
  beforeEach(async () => {
    database = await openDatabase<PresenceTables>("sqlite::memory:", migrations);
  });
  afterEach(() => database.close());

  it("adds a session with every field, once", async () => {
    await addSession(database.db, session("s1"));
    await addSession(database.db, { ...session("s1"), displayName: "changed" });
    assert.deepEqual(await liveSessions(database.db, 0), [session("s1")]);
  });

  it("does not add a session that has already ended, nor one of a closed account, and adds the others", async () => {
    await endSession(database.db, "ended", 2_000);
    await closeAccount(database.db, "closed", 2_000);
    await addSession(database.db, session("ended"));
    await addSession(database.db, session("of-closed", "closed"));
    await addSession(database.db, session("live", "bob"));
    assert.deepEqual(
      (await liveSessions(database.db, 0)).map((live) => live.sessionId),
      ["live"],
    );
  });
});

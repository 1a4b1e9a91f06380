import assert from "node:assert/strict";
import { isLive, onlineUsersFor, type OnlineSession } from "../../src/domain/online.ts";

const session = (userId: string, sessionId: string, expiresAt = 2_000): OnlineSession => ({
  sessionId,
  userId,
  email: `${userId}@example.com`,
  displayName: userId.toUpperCase(),
  startedAt: 0,
  expiresAt,
});

describe("who is online", () => {
  const sessions = [session("bob", "s1"), session("ada", "s2"), session("ada", "s3"), session("eve", "s4", 500)];

  it("counts a session only until its token expires", () => {
    assert.equal(isLive({ expiresAt: 1_001 }, 1_000), true);
    assert.equal(isLive({ expiresAt: 1_000 }, 1_000), false);
  });

  it("shows an admin each online user once, with email and session count", () => {
    assert.deepEqual(onlineUsersFor(["admin"], sessions, 1_000), [
      { userId: "ada", displayName: "ADA", email: "ada@example.com", sessions: 2 },
      { userId: "bob", displayName: "BOB", email: "bob@example.com", sessions: 1 },
    ]);
  });

  it("shows a publisher display names only", () => {
    assert.deepEqual(
      onlineUsersFor(["publisher"], sessions, 1_000).map(({ displayName, email, userId }) => ({ displayName, email, userId })),
      [
        { displayName: "ADA", email: "", userId: "" },
        { displayName: "BOB", email: "", userId: "" },
      ],
    );
  });
});

import type { Role } from "@meshwork/platform";

export interface OnlineSession {
  sessionId: string;
  userId: string;
  email: string;
  displayName: string;
  startedAt: number;
  expiresAt: number;
}

export interface OnlineUserView {
  userId: string;
  displayName: string;
  email: string;
  sessions: number;
}

/** A session counts while its token is valid: `SignedOut` ends it early, expiry ends it anyway. */
export function isLive(session: Pick<OnlineSession, "expiresAt">, now: number): boolean {
  return session.expiresAt > now;
}

/**
 * One entry per user with live sessions, shaped by the caller's role: an admin sees emails, a
 * publisher display names only. Sorted by display name so answers are stable.
 */
export function onlineUsersFor(roles: readonly Role[], sessions: readonly OnlineSession[], now: number): OnlineUserView[] {
  const admin = roles.includes("admin");
  const byUser = new Map<string, OnlineUserView>();
  for (const session of sessions) {
    if (!isLive(session, now)) continue;
    const entry = byUser.get(session.userId) ?? { userId: session.userId, displayName: session.displayName, email: "", sessions: 0 };
    entry.sessions++;
    if (admin) entry.email = session.email;
    byUser.set(session.userId, entry);
  }
  const users = [...byUser.values()].sort((a, b) => a.displayName.localeCompare(b.displayName) || a.userId.localeCompare(b.userId));
  return admin ? users : users.map((user) => ({ ...user, userId: "", email: "" }));
}

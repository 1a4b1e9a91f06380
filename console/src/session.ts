/**
 * Who is signed in. The access token lives in this module's memory only: never in localStorage,
 * sessionStorage or a cookie, so a reload or a new tab signs in again, and script injected into
 * another page cannot read it. When the token expires (or a service answers Unauthenticated), the
 * session ends and the sign-in form comes back with the reason.
 */
export type Role = "member" | "publisher" | "admin";

export interface Session {
  token: string;
  userId: string;
  email: string;
  displayName: string;
  roles: Role[];
  expiresAt: number;
}

type Listener = (session: Session | undefined, reason?: string) => void;

let current: Session | undefined;
let expiryTimer: ReturnType<typeof setTimeout> | undefined;
const listeners = new Set<Listener>();

export function currentSession(): Session | undefined {
  return current;
}

export function hasRole(...roles: Role[]): boolean {
  return current?.roles.some((role) => roles.includes(role)) ?? false;
}

export function onSessionChange(listener: Listener): void {
  listeners.add(listener);
}

export function startSession(session: Session): void {
  current = session;
  clearTimeout(expiryTimer);
  expiryTimer = setTimeout(() => endSession("Your session expired: sign in again."), Math.max(0, session.expiresAt - Date.now()));
  for (const listener of listeners) listener(current);
}

export function endSession(reason?: string): void {
  if (!current) return;
  current = undefined;
  clearTimeout(expiryTimer);
  for (const listener of listeners) listener(undefined, reason);
}

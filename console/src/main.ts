import { describeError, identity, loadConfig } from "./api.ts";
import { h } from "./dom.ts";
import { currentSession, endSession, hasRole, onSessionChange } from "./session.ts";
import { deadLettersView, deprecatedCallsView, onlineUsersView } from "./views/admin.ts";
import { authView } from "./views/auth.ts";
import { eventsView } from "./views/events.ts";
import { ordersView } from "./views/orders.ts";
import { presenceView } from "./views/presence.ts";
import type { View } from "./views/view.ts";

const config = await loadConfig();
const app = document.getElementById("app")!;
const header = document.getElementById("session")!;
let views: View[] = [];
let clock: ReturnType<typeof setInterval> | undefined;

/**
 * The views follow the roles in the session, as the services' access tables do: every signed-in
 * user sees the count and orders; publishers add the event stream (redacted) and who is online;
 * admins add dead letters and deprecated-API callers. The services enforce the same rules, so a
 * view hidden here would be refused there anyway.
 */
function render(reason?: string): void {
  for (const view of views) view.stop();
  clearInterval(clock);
  const session = currentSession();
  if (!session) {
    views = [authView(reason)];
    header.replaceChildren();
  } else {
    views = [presenceView(), ordersView()];
    if (hasRole("publisher", "admin")) views.push(eventsView(config), onlineUsersView());
    if (hasRole("admin")) views.push(deadLettersView(), deprecatedCallsView(config));
    const expiry = h("span", { class: "muted", id: "token-expiry" });
    const tick = () => (expiry.textContent = `token expires in ${Math.max(0, Math.round((session.expiresAt - Date.now()) / 1000))} s`);
    tick();
    clock = setInterval(tick, 1_000);
    header.replaceChildren(
      h("span", { id: "signed-in-as" }, `${session.displayName} <${session.email}>`),
      " ",
      ...session.roles.map((role) => h("span", { class: `role role-${role}` }, role)),
      " ",
      expiry,
      " ",
      h("button", { type: "button", id: "sign-out", onclick: () => void signOut() }, "Sign out"),
    );
  }
  app.replaceChildren(...views.map((view) => view.element));
}

async function signOut(): Promise<void> {
  try {
    await identity.signOut({});
    endSession("Signed out.");
  } catch (error) {
    // The token is dropped either way; the session it opened then ends when the token expires.
    endSession(`Signed out here, but identity did not record it (${describeError(error)}).`);
  }
}

onSessionChange((_session, reason) => render(reason));
render();

import { timestampMs } from "@bufbuild/protobuf/wkt";
import { deadLetters, describeError, presence, type ConsoleConfig } from "../api.ts";
import { h } from "../dom.ts";
import { hasRole } from "../session.ts";
import { time, type View } from "./view.ts";

/** Who is online (publishers: names; admins: emails too), from presence v2's ListOnlineUsers. */
export function onlineUsersView(): View {
  const rows = h("tbody", { id: "online-users" });
  const status = h("p", { class: "status", role: "status" });
  const refresh = async () => {
    try {
      const page = await presence.listOnlineUsers({ pageSize: 50 });
      rows.replaceChildren(...page.users.map((user) => h("tr", {}, h("td", {}, user.displayName), h("td", {}, user.email || "—"), h("td", {}, user.sessions))));
      status.textContent = page.nextPageToken ? "showing the first 50" : "";
    } catch (error) {
      status.textContent = describeError(error);
    }
  };
  void refresh();
  const timer = setInterval(() => void refresh(), 3_000);
  const element = h(
    "section",
    { class: "panel" },
    h("h2", {}, "Who is online"),
    hasRole("admin") ? null : h("p", { class: "muted" }, "Emails are shown to admins only."),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "name"), h("th", {}, "email"), h("th", {}, "sessions"))), rows),
    status,
  );
  return { element, stop: () => clearInterval(timer) };
}

/** Events a consumer gave up on, with the reason, and a replay button for each (admins). */
export function deadLettersView(): View {
  const rows = h("tbody", { id: "dead-letters" });
  const status = h("p", { class: "status", role: "status", id: "dead-letter-status" });
  const refresh = async () => {
    try {
      const { deadLetters: letters } = await deadLetters.listDeadLetters({});
      rows.replaceChildren(
        ...letters.map((letter) =>
          h(
            "tr",
            {},
            h("td", {}, String(letter.sequence)),
            h("td", {}, letter.deadLetteredAt ? time(timestampMs(letter.deadLetteredAt)) : ""),
            h("td", {}, h("code", {}, letter.consumer)),
            h("td", {}, h("code", {}, letter.originalSubject)),
            h("td", {}, letter.deliveries),
            h("td", { class: "error" }, letter.error),
            h("td", {}, h("button", { type: "button", class: "small", onclick: () => void replay(letter.sequence) }, "replay")),
          ),
        ),
      );
      if (letters.length === 0) rows.append(h("tr", {}, h("td", { colspan: "7", class: "muted" }, "no dead letters")));
    } catch (error) {
      status.textContent = describeError(error);
    }
  };
  const replay = async (sequence: bigint) => {
    try {
      const { deadLetter } = await deadLetters.replayDeadLetter({ sequence });
      status.textContent = `replayed #${sequence} to ${deadLetter?.originalSubject}`;
    } catch (error) {
      status.textContent = describeError(error);
    }
    await refresh();
  };
  void refresh();
  const timer = setInterval(() => void refresh(), 5_000);
  const element = h(
    "section",
    { class: "panel" },
    h("h2", {}, "Dead letters"),
    h("p", { class: "muted" }, "Replay puts the event back on its subject; consumers that handled it before skip it by its id. Fix the cause first."),
    h("table", {}, h("thead", {}, h("tr", {}, ...["#", "when", "consumer", "subject", "tries", "error", ""].map((name) => h("th", {}, name)))), rows),
    status,
  );
  return { element, stop: () => clearInterval(timer) };
}

interface DeprecatedCallRow {
  service: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Who still calls deprecated APIs: the platform's deprecated-call counter, read from each
 * service's /metrics by the console server (make dev). Rows are per method, and per calling
 * principal where the counter carries one. In a cluster, the Grafana dashboard shows the same.
 */
export function deprecatedCallsView(config: ConsoleConfig): View {
  const rows = h("tbody", { id: "deprecated-calls" });
  const refresh = async () => {
    const answer = await fetch("/api/deprecated-calls").catch(() => undefined);
    const found = answer?.ok ? ((await answer.json()) as DeprecatedCallRow[]) : [];
    const principalOf = (labels: Record<string, string>) => labels["meshwork_caller"] ?? "(not recorded by this version)";
    rows.replaceChildren(
      ...found.sort((a, b) => b.value - a.value).map((row) => h("tr", {}, h("td", {}, row.service), h("td", {}, h("code", {}, `${row.labels["rpc_service"] ?? ""}/${row.labels["rpc_method"] ?? ""}`)), h("td", {}, principalOf(row.labels)), h("td", {}, row.value))),
    );
    if (found.length === 0) rows.append(h("tr", {}, h("td", { colspan: "4", class: "muted" }, "no calls to deprecated APIs since the services started")));
  };
  const timer = config.deprecatedCalls ? setInterval(() => void refresh(), 5_000) : undefined;
  if (config.deprecatedCalls) void refresh();
  const element = h(
    "section",
    { class: "panel" },
    h("h2", {}, "Calls to deprecated APIs"),
    config.deprecatedCalls
      ? h("table", {}, h("thead", {}, h("tr", {}, ...["service", "method", "caller", "calls"].map((name) => h("th", {}, name)))), rows)
      : h("p", { class: "muted" }, "Not available here: this console has no access to the services' /metrics. See the Grafana dashboard's \"Deprecated API calls by caller\" panel."),
  );
  return { element, stop: () => clearInterval(timer) };
}

import { timestampMs } from "@bufbuild/protobuf/wkt";
import { describeError, presence } from "../api.ts";
import { h } from "../dom.ts";
import { sleep, time, type View } from "./view.ts";

/**
 * The number of users online, live from presence's WatchOnlineCount stream. presence learns of
 * sign-ins from events, so the number may lag a sign-in by a moment, and it says so: the count is
 * marked stale when no message arrived within two heartbeats, when the projection was last read
 * too long ago, or while the stream is reconnecting.
 */
export function presenceView(): View {
  const count = h("strong", { id: "online-count" }, "…");
  const sessions = h("span", { id: "online-sessions" }, "");
  const asOfText = h("span", { class: "muted" }, "");
  const stale = h("span", { id: "online-stale", class: "stale", hidden: true }, "");
  const controller = new AbortController();
  let heartbeatMs = 5_000;
  let lastMessageAt = 0;
  let asOf = 0;
  let problem = "";

  const checkFreshness = () => {
    const now = Date.now();
    const reason = problem || (now - lastMessageAt > 2 * heartbeatMs ? `no update for ${Math.round((now - lastMessageAt) / 1000)} s` : now - asOf > 2 * heartbeatMs ? `presence last read its projection ${Math.round((now - asOf) / 1000)} s ago` : "");
    stale.hidden = !reason;
    stale.textContent = reason ? `stale: ${reason}` : "";
    count.dataset["stale"] = String(Boolean(reason));
  };

  void (async () => {
    for (let attempt = 0; !controller.signal.aborted; attempt++) {
      try {
        for await (const summary of presence.watchOnlineCount({}, { signal: controller.signal })) {
          attempt = 0;
          problem = "";
          heartbeatMs = summary.heartbeatSeconds * 1000 || heartbeatMs;
          lastMessageAt = Date.now();
          asOf = summary.asOf ? timestampMs(summary.asOf) : lastMessageAt;
          count.textContent = String(summary.onlineUsers);
          sessions.textContent = `(${summary.onlineSessions} sessions)`;
          asOfText.textContent = `as of ${time(asOf)}`;
          checkFreshness();
        }
        problem = "the stream ended; reconnecting";
      } catch (error) {
        if (controller.signal.aborted) return;
        problem = `${describeError(error)}; reconnecting`;
      }
      checkFreshness();
      await sleep(Math.min(10_000, 500 * 2 ** attempt));
    }
  })();
  const freshness = setInterval(checkFreshness, 1_000);

  const element = h(
    "section",
    { class: "panel presence" },
    h("h2", {}, "Online now"),
    h("p", { class: "big" }, count, " users ", sessions, " ", asOfText),
    stale,
    h("p", { class: "muted" }, "presence counts sign-ins from identity's events, so a new sign-in shows up a moment later: eventually right, and marked stale when it may not be."),
  );
  return {
    element,
    stop() {
      controller.abort();
      clearInterval(freshness);
    },
  };
}

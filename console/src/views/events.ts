import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import type { AuditEvent } from "@meshwork/proto/meshwork/audit/v1/audit_pb.js";
import { audit, describeError, type ConsoleConfig } from "../api.ts";
import { h } from "../dom.ts";
import { hasRole } from "../session.ts";
import { sleep, time, type View } from "./view.ts";

const KEEP = 200;
const LOOKBACK_MS = 15 * 60_000;

/**
 * audit's record of every event, newest first, polled once a second and filterable by subject
 * prefix. Each row links its trace id to the trace UI. Publishers get payloads with personal data
 * redacted, by audit itself.
 */
export function eventsView(config: ConsoleConfig): View {
  const filter = h("input", { id: "subject-prefix", placeholder: "subject prefix, e.g. identity. or payments.v1.payment", size: "40" });
  const rows = h("tbody", { id: "events" });
  const status = h("p", { class: "status", role: "status" });
  let generation = 0;
  let stopped = false;

  const poll = async (mine: number) => {
    const seen = new Set<string>();
    let since = Date.now() - LOOKBACK_MS;
    while (!stopped && mine === generation) {
      try {
        let pageToken = "";
        const fresh: AuditEvent[] = [];
        do {
          const page = await audit.listEvents({ subjectPrefix: filter.value.trim(), since: timestampFromMs(since), pageSize: 200, pageToken });
          fresh.push(...page.events.filter((event) => !seen.has(event.id)));
          pageToken = page.nextPageToken;
        } while (pageToken && mine === generation);
        if (mine !== generation) return;
        for (const event of fresh) {
          seen.add(event.id);
          since = Math.max(since, timestampMs(event.time!));
          rows.prepend(row(event, config));
        }
        while (rows.children.length > KEEP) rows.lastElementChild!.remove();
        status.textContent = "";
      } catch (error) {
        status.textContent = describeError(error);
      }
      await sleep(1_000);
    }
  };
  const restart = () => {
    generation++;
    rows.replaceChildren();
    void poll(generation);
  };
  filter.addEventListener("change", restart);
  restart();

  const element = h(
    "section",
    { class: "panel events-panel" },
    h("h2", {}, "Event stream (audit)"),
    hasRole("admin") ? null : h("p", { class: "muted" }, "As a publisher you see payloads with personal data redacted."),
    h("label", {}, "Filter ", filter),
    status,
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "time"), h("th", {}, "subject"), h("th", {}, "user"), h("th", {}, "trace"), h("th", {}, "payload"))), rows),
  );
  return {
    element,
    stop() {
      stopped = true;
    },
  };
}

function row(event: AuditEvent, config: ConsoleConfig): HTMLTableRowElement {
  const traceCell = h("td", {});
  if (event.traceId) {
    const link = config.traceUiUrl
      ? h("a", { href: config.traceUiUrl.replace("{traceId}", event.traceId), target: "_blank", rel: "noopener", class: "trace-link" }, event.traceId.slice(0, 12) + "…")
      : h("code", {}, event.traceId.slice(0, 12) + "…");
    traceCell.append(link);
    if (config.traceTree) {
      const tree = h("div", { class: "trace-tree" });
      traceCell.append(" ", h("button", { type: "button", class: "small", onclick: () => void showTrace(event.traceId, tree) }, "spans"), tree);
    }
  }
  return h(
    "tr",
    { "data-subject": event.subject },
    h("td", {}, time(timestampMs(event.time!))),
    h("td", {}, h("code", {}, event.subject)),
    h("td", {}, h("code", {}, event.userId.slice(0, 8))),
    traceCell,
    h("td", {}, h("details", {}, h("summary", {}, event.redacted ? "redacted" : "payload"), h("pre", {}, prettyJson(event.payloadJson)))),
  );
}

function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

interface JaegerSpan {
  spanID: string;
  operationName: string;
  references?: { refType: string; spanID: string }[];
  startTime: number;
  duration: number;
  processID: string;
}
interface JaegerTrace {
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string }>;
}

/** The trace's spans as an indented tree (service: operation, duration), from Jaeger's query API. */
async function showTrace(traceId: string, into: HTMLElement): Promise<void> {
  into.textContent = "…";
  const answer = await fetch(`/api/traces/${traceId}`).catch(() => undefined);
  const trace = answer?.ok ? ((await answer.json()) as { data?: JaegerTrace[] }).data?.[0] : undefined;
  if (!trace) return void (into.textContent = "trace not found (yet): spans arrive a few seconds after the request");
  const children = new Map<string, JaegerSpan[]>();
  const ids = new Set(trace.spans.map((span) => span.spanID));
  const roots: JaegerSpan[] = [];
  for (const span of trace.spans) {
    const parent = span.references?.find((reference) => reference.refType === "CHILD_OF" && ids.has(reference.spanID))?.spanID;
    if (parent) children.set(parent, [...(children.get(parent) ?? []), span]);
    else roots.push(span);
  }
  const list = (spans: JaegerSpan[]): HTMLUListElement =>
    h(
      "ul",
      {},
      ...spans
        .sort((a, b) => a.startTime - b.startTime)
        .map((span) => h("li", {}, h("b", {}, trace.processes[span.processID]?.serviceName ?? "?"), ` ${span.operationName} `, h("span", { class: "muted" }, `${(span.duration / 1000).toFixed(1)} ms`), children.has(span.spanID) ? list(children.get(span.spanID)!) : null)),
    );
  into.replaceChildren(list(roots));
}

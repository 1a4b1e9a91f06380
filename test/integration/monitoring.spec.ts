import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { parse } from "yaml";
import { DeadLetterService } from "@meshwork/proto/meshwork/audit/v1/audit_pb.js";
import { OrdersService } from "@meshwork/proto/meshwork/orders/v1/orders_pb.js";
import { PresenceService } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import { uuidv7 } from "@meshwork/platform";
import { ROOT, SERVICES, waitFor } from "../../scripts/lib/system.ts";
import { publishUserEvent, signedIn } from "../support/events.ts";
import { adminToken, TestSystem } from "../support/harness.ts";

const run = promisify(execFile);
const MONITORING = path.join(ROOT, "charts/meshwork/files/monitoring");
const PROMTOOL = path.join(ROOT, ".tools/bin/promtool");

interface Dashboard {
  panels: { title: string; targets: { expr: string }[] }[];
}
interface RuleFile {
  groups: { name: string; rules: { alert: string; expr: string; annotations: Record<string, string> }[] }[];
}

const dashboard = JSON.parse(fs.readFileSync(path.join(MONITORING, "dashboard.json"), "utf8")) as Dashboard;
const rules = parse(fs.readFileSync(path.join(MONITORING, "alerts.yaml"), "utf8")) as RuleFile;

/**
 * The dashboard and the alerts name only metrics a running Meshwork exports: the system runs the
 * journeys that make every series appear (sign-ins, orders confirmed and refunded, a deprecated
 * call, a dead letter), then every /metrics is read and every name in a query must be in it.
 */
describe("dashboards and alerts", function () {
  this.timeout(180_000);
  // presence fails on this one event, so it is retried and then dead-lettered.
  const poisonId = uuidv7();
  const system = new TestSystem({ env: { presence: { MESHWORK_FAULTS: `reject-event=${poisonId}` } } });
  const exported = new Set<string>();

  before(async () => {
    await system.start();
    const admin = await adminToken(system);
    const member = await system.signIn("metrics@example.com", "a-metrics-passphrase");
    await system.client(PresenceService, "presence", "connect", member).getOnlineCount({});
    const orders = system.client(OrdersService, "orders", "connect", member);
    for (const countryCode of ["GB", "XX"]) {
      await orders.placeOrder({ items: [{ sku: "mug", quantity: 1, unitPriceCents: 1250n }], shippingAddress: { recipient: "M", line1: "1 St", city: "C", countryCode } });
    }
    await publishUserEvent(await system.natsConnection(), signedIn("poison-user", "poison-session"), undefined, poisonId);
    const deadLetters = system.client(DeadLetterService, "audit", "connect", admin);
    await waitFor(async () => (await deadLetters.listDeadLetters({})).deadLetters.length === 1, "the dead letter", 30_000, 250);
    for (const name of SERVICES) {
      const text = await (await fetch(`${system.adminUrl(name)}/metrics`)).text();
      for (const line of text.split("\n")) {
        const metric = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line)?.[1];
        if (metric) exported.add(metric);
      }
    }
  });
  after(() => system.stop());

  const queries = [
    ...dashboard.panels.flatMap((panel) => panel.targets.map((target) => ({ where: `panel "${panel.title}"`, expr: target.expr }))),
    ...rules.groups.flatMap((group) => group.rules.map((rule) => ({ where: `alert ${rule.alert}`, expr: rule.expr }))),
  ];

  it("names only metrics that a running system exports, in every panel and alert", () => {
    assert.ok(dashboard.panels.length >= 10, "the dashboard has its panels");
    const missing: string[] = [];
    for (const { where, expr } of queries) {
      const names = metricNames(expr);
      assert.ok(names.length > 0, `${where} names a metric: ${expr}`);
      for (const name of names) if (!exported.has(name)) missing.push(`${where}: ${name}`);
    }
    assert.deepEqual(missing, [], `exported: ${[...exported].filter((name) => name.startsWith("meshwork") || name.startsWith("rpc")).sort().join(", ")}`);
  });

  it("covers what operators asked for: RPCs, sign-ins, outbox, consumers, dead letters, deprecated calls, sagas", () => {
    const everything = queries.map((query) => query.expr).join("\n");
    for (const metric of [
      "rpc_server_duration_count",
      "rpc_server_duration_bucket",
      "meshwork_identity_sign_ins_total",
      "meshwork_outbox_backlog",
      "meshwork_outbox_oldest_age",
      "meshwork_consumer_lag",
      "meshwork_events_redelivered_total",
      "meshwork_deadletters_pending",
      "meshwork_rpc_deprecated_calls_total",
      "meshwork_orders_sagas",
      "meshwork_orders_saga_oldest_open_age",
    ]) {
      assert.match(everything, new RegExp(`\\b${metric}\\b`), metric);
    }
  });

  it("gives every alert a runbook section that exists in docs/operations.md", () => {
    const operations = fs.readFileSync(path.join(ROOT, "docs/operations.md"), "utf8");
    const anchors = new Set([...operations.matchAll(/^#+ (.+)$/gm)].map((heading) => heading[1]!.toLowerCase().replace(/[^a-z0-9 -]/g, "").replace(/ /g, "-")));
    for (const group of rules.groups) {
      for (const rule of group.rules) {
        const anchor = /^docs\/operations\.md#(.+)$/.exec(rule.annotations["runbook"] ?? "")?.[1];
        assert.ok(anchor && anchors.has(anchor), `${rule.alert}: runbook ${rule.annotations["runbook"]} is a heading in docs/operations.md`);
      }
    }
  });

  it("passes promtool check rules", async () => {
    const { stdout } = await run(PROMTOOL, ["check", "rules", path.join(MONITORING, "alerts.yaml")]);
    assert.match(stdout, /SUCCESS: \d+ rules found/);
  });
});

const PROMQL_WORDS = new Set([
  "sum", "min", "max", "avg", "count", "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
  "rate", "irate", "increase", "deriv", "delta", "histogram_quantile", "min_over_time", "max_over_time", "avg_over_time", "abs", "clamp_min", "topk", "le",
]);

/** Metric names in a PromQL expression: identifiers outside label matchers, groupings, ranges and strings. */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, " ")
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, " ");
  const names = [...stripped.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)].map((match) => match[1]!);
  return [...new Set(names.filter((name) => !PROMQL_WORDS.has(name) && !/^\d/.test(name)))];
}

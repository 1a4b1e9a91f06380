/**
 * `make api-check`: fails once a deprecated API (proto/deprecations.ts) is more than 14 days past
 * its sunset and its protobuf service is still in proto/, so old versions really get deleted
 * rather than served forever. `--today YYYY-MM-DD` checks as of another day (tests, planning).
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { DEPRECATED_APIS } from "@meshwork/proto/deprecations.ts";
import { overdueApis, RETIREMENT_GRACE_DAYS } from "@meshwork/platform";
import { ROOT } from "./lib/system.ts";

const { values } = parseArgs({ options: { today: { type: "string" } } });
const today = values.today ? new Date(`${values.today}T00:00:00Z`) : new Date();
if (Number.isNaN(today.getTime())) throw new Error(`--today: expected YYYY-MM-DD, got ${values.today}`);

const built = builtServices(path.join(ROOT, "proto"));
const overdue = overdueApis(DEPRECATED_APIS, built, today);
for (const api of overdue) {
  console.error(
    `api-check: ${api.api} sunset on ${api.sunset.toISOString().slice(0, 10)}, ${api.daysPastSunset} days ago (grace: ${RETIREMENT_GRACE_DAYS}), ` +
      `and is still in the build. Delete it (docs/versioning.md, "Retire"); its callers use ${api.successor}.`,
  );
}
if (overdue.length > 0) process.exit(1);
console.log(`api-check: ${DEPRECATED_APIS.length} deprecated API(s), none past sunset + ${RETIREMENT_GRACE_DAYS} days and still built`);

/** Full names of every protobuf service declared under `dir`. */
function builtServices(dir: string): Set<string> {
  const names = new Set<string>();
  for (const file of fs.readdirSync(dir, { recursive: true, encoding: "utf8" })) {
    if (!file.endsWith(".proto")) continue;
    const source = fs.readFileSync(path.join(dir, file), "utf8");
    const pkg = /^\s*package\s+([\w.]+)\s*;/m.exec(source)?.[1];
    for (const match of source.matchAll(/^\s*service\s+(\w+)\s*\{/gm)) names.add(pkg ? `${pkg}.${match[1]}` : match[1]!);
  }
  return names;
}

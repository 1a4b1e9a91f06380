/**
 * Writes charts/meshwork/files/access.json from each service's access table, so the Istio
 * AuthorizationPolicies the chart renders are derived from the tables the services enforce, and
 * files/cors.json from the platform's CORS lists, so the gateway's CORS filter answers browsers
 * exactly as the services do. `make check-generated` fails when either file is stale.
 */
import fs from "node:fs";
import path from "node:path";
import {
  CORS_ALLOWED_HEADERS,
  CORS_ALLOWED_METHODS,
  CORS_EXPOSED_HEADERS,
  CORS_MAX_AGE_SECONDS,
  PUBLIC,
  type AccessTable,
} from "@meshwork/platform";
import { loadServices, ROOT } from "./lib/services.ts";

/** Each service's access table (services/<name>/src/access.ts), for every service in the manifest. */
export async function loadAccessTables(): Promise<Record<string, AccessTable>> {
  const tables: Record<string, AccessTable> = {};
  for (const { name } of [...loadServices()].sort((x, y) => x.rpcPort - y.rpcPort)) {
    tables[name] = ((await import(path.join(ROOT, "services", name, "src", "access.ts"))) as { access: AccessTable }).access;
  }
  return tables;
}

export function renderAccessJson(tables: Record<string, AccessTable>): string {
  const services = Object.fromEntries(
    Object.entries(tables).map(([name, table]) => [
      name,
      {
        methods: Object.fromEntries(
          Object.entries(table.methods).map(([method, rule]) => [method, rule === PUBLIC ? { public: true, roles: [] } : { public: false, roles: [...rule] }]),
        ),
        callers: table.callers,
      },
    ]),
  );
  return JSON.stringify({ services }, null, 2) + "\n";
}

export function renderCorsJson(): string {
  const cors = {
    allowedMethods: CORS_ALLOWED_METHODS,
    allowedHeaders: CORS_ALLOWED_HEADERS,
    exposedHeaders: CORS_EXPOSED_HEADERS,
    maxAgeSeconds: CORS_MAX_AGE_SECONDS,
  };
  return JSON.stringify(cors, null, 2) + "\n";
}

if (import.meta.main) {
  for (const [name, content] of [["access.json", renderAccessJson(await loadAccessTables())], ["cors.json", renderCorsJson()]] as const) {
    const file = path.join(ROOT, "charts/meshwork/files", name);
    fs.writeFileSync(file, content);
    console.log(`wrote ${path.relative(ROOT, file)}`);
  }
}

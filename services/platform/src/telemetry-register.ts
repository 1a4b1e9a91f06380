/**
 * Loaded with `node --import @meshwork/platform/telemetry-register.ts services/<name>/src/main.ts`,
 * so the SDK is registered before any module that creates a tracer or meter is evaluated.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { startTelemetry } from "./telemetry.ts";

const entry = process.argv[1] ?? "";
const serviceDir = path.resolve(path.dirname(entry), "..");
const packageJson = readPackageJson(path.join(serviceDir, "package.json"));
const serviceName = process.env["OTEL_SERVICE_NAME"] ?? packageJson.name?.replace(/^@meshwork\//, "") ?? path.basename(serviceDir);

await startTelemetry({
  serviceName,
  serviceVersion: packageJson.version ?? "0.0.0",
  environment: process.env["MESHWORK_ENVIRONMENT"] ?? "local",
});

function readPackageJson(file: string): { name?: string; version?: string } {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as { name?: string; version?: string };
  } catch {
    return {};
  }
}

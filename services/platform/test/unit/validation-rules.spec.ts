import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { assertRulesCompile } from "../../src/rpc/validation.ts";

const GENERATED = path.resolve(import.meta.dirname, "../../../../proto/gen/meshwork");

/** Every protobuf service Meshwork serves, from the generated code of proto/gen/meshwork. */
async function allServices(): Promise<DescService[]> {
  const files = fs.readdirSync(GENERATED, { recursive: true, encoding: "utf8" }).filter((file) => file.endsWith("_pb.js"));
  const services: DescService[] = [];
  for (const file of files) {
    const module = (await import(`@meshwork/proto/meshwork/${file}`)) as Record<string, unknown>;
    for (const value of Object.values(module)) {
      if ((value as { kind?: string } | undefined)?.kind === "service") services.push(value as DescService);
    }
  }
  return services;
}

describe("buf.validate rules of every request type", () => {
  it("compile, for every service in proto/gen (a rule that does not is caught here, before any service runs it)", async () => {
    const services = await allServices();
    // identity, presence, audit, orders, payments, shipping, notifications (and their older versions)
    assert.ok(services.length >= 7, services.map((service) => service.typeName).join(", "));
    await assert.doesNotReject(assertRulesCompile(services));
  });
});

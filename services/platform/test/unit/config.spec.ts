import assert from "node:assert/strict";
import { baseConfigSchema, ConfigError, databaseUrlFor, loadConfig } from "../../src/config.ts";

describe("configuration", () => {
  it("fills local defaults and names the SQLite file after the service", () => {
    const config = loadConfig(baseConfigSchema, { RPC_PORT: "1", ADMIN_PORT: "2" });
    assert.equal(config.NATS_URL, "nats://127.0.0.1:4222");
    assert.equal(databaseUrlFor(config, "presence"), "sqlite:.data/presence.db");
  });

  it("lists every problem at once", () => {
    assert.throws(
      () => loadConfig(baseConfigSchema, { RPC_PORT: "x", ADMIN_PORT: "99999", LOG_LEVEL: "loud" }),
      (error: ConfigError) => ["RPC_PORT", "ADMIN_PORT", "LOG_LEVEL"].every((key) => error.message.includes(key)),
    );
  });
});

import assert from "node:assert/strict";
import { baseConfigSchema, ConfigError, loadConfig } from "../../src/config.ts";
import { originAllowed, parseAllowedOrigins } from "../../src/rpc/cors.ts";

describe("CORS origins", () => {
  it("parses a comma-separated list and refuses anything that is not an origin", () => {
    assert.deepEqual(parseAllowedOrigins(" https://app.example.com, http://localhost:* ,"), ["https://app.example.com", "http://localhost:*"]);
    assert.deepEqual(parseAllowedOrigins(""), []);
    for (const bad of ["*", "app.example.com", "https://app.example.com/", "https://*.example.com", "ftp://x"]) {
      assert.throws(() => parseAllowedOrigins(bad), /is not an origin/, bad);
    }
  });

  it("allows none by default and reports a bad origin as a configuration problem", () => {
    assert.deepEqual(loadConfig(baseConfigSchema, { RPC_PORT: "1", ADMIN_PORT: "2" }).CORS_ALLOWED_ORIGINS, []);
    assert.throws(() => loadConfig(baseConfigSchema, { RPC_PORT: "1", ADMIN_PORT: "2", CORS_ALLOWED_ORIGINS: "*" }), (error: ConfigError) =>
      error.message.includes("CORS_ALLOWED_ORIGINS"),
    );
  });

  it("matches exact origins, and any port only where the pattern says :*", () => {
    const allowed = ["https://app.example.com", "http://localhost:*"];
    assert.ok(originAllowed("https://app.example.com", allowed));
    assert.ok(originAllowed("http://localhost:5173", allowed));
    assert.ok(originAllowed("http://localhost:80", allowed));
    for (const refused of ["http://app.example.com", "https://app.example.com:8443", "http://localhost", "http://localhost:5173.evil.example", "http://localhost.evil:1", "https://localhost:5173", "null"]) {
      assert.equal(originAllowed(refused, allowed), false, refused);
    }
  });
});

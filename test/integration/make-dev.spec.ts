import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnManaged, waitFor } from "../../scripts/lib/system.ts";
import { freeOffset } from "../support/dev-ports.ts";

describe("make dev", function () {
  this.timeout(60_000);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "meshwork-dev-"));
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it("brings nats-server and every service up in under 20 s, prints endpoints and credentials, and stops cleanly on Ctrl-C", async () => {
    const offset = await freeOffset();
    const dev = spawnManaged("dev", process.execPath, ["scripts/dev.ts"], {
      env: { MESHWORK_DEV_DATA_DIR: dataDir, MESHWORK_DEV_PORT_OFFSET: String(offset), MESHWORK_ADMIN_PASSWORD: "", MESHWORK_ADMIN_EMAIL: "" },
    });
    await waitFor(() => /Meshwork is up in/.test(dev.output()) || dev.child.exitCode !== null, "the table of endpoints", 40_000, 100);
    const output = dev.output();
    const seconds = Number(/Meshwork is up in ([\d.]+) s/.exec(output)?.[1]);
    assert.ok(seconds < 20, `ready in ${seconds} s:\n${output}`);
    for (const port of [50051, 50052, 50053, 9051, 9052, 9053]) assert.match(output, new RegExp(`127\\.0\\.0\\.1:${port + offset}`));
    const credentials = JSON.parse(fs.readFileSync(path.join(dataDir, "admin-credentials.json"), "utf8")) as { email: string; password: string };
    assert.ok(output.includes(credentials.password), "prints the generated admin password");
    assert.match(output, /\[identity\] identity started/, "readable lines prefixed by the service");
    const ready = await fetch(`http://127.0.0.1:${9052 + offset}/readyz`);
    assert.equal(ready.status, 200);

    dev.child.kill("SIGINT");
    assert.equal(await dev.exited, 0);
    assert.match(dev.output(), /stopped\./);
    await assert.rejects(fetch(`http://127.0.0.1:${9051 + offset}/healthz`), "identity is gone");
  });
});

// A real browser on another origin: Debian's Chromium, headless, driven by playwright-core. The
// page runs README.md's browser snippet as written, so the CORS answers are judged by Chromium
// itself (preflight for the Authorization header, exposed headers, Connect GET), not by us.
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { DEFAULT_PORTS } from "../../scripts/lib/system.ts";
import { TestSystem } from "../support/harness.ts";
import { readmeBlocks, withPorts } from "../support/readme.ts";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

describe("a browser on another origin", function () {
  this.timeout(120_000);
  let pages: http.Server;
  let pagePort = 0;
  let system: TestSystem;
  let browser: BrowserContext;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "meshwork-chromium-"));

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`);
    // One page server, reached under two origins: http://localhost:<port> is allowed,
    // http://127.0.0.1:<port> is not.
    pages = http.createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>meshwork client</title>"));
    await new Promise<void>((resolve) => pages.listen(0, "127.0.0.1", resolve));
    pagePort = (pages.address() as net.AddressInfo).port;
    system = new TestSystem({ services: ["identity", "presence"], commonEnv: { CORS_ALLOWED_ORIGINS: `http://localhost:${pagePort}` } });
    await system.start();
    await system.signIn("ada@example.com", "analytical-engine-1843", "Ada");
    // A fresh profile each run (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
  });
  after(async () => {
    await browser?.close();
    await system?.stop();
    pages?.close();
    fs.rmSync(profile, { recursive: true, force: true });
  });

  /** README's browser snippet, pointed at this system's ports, run in a page of `origin`. */
  async function runSnippet(origin: string): Promise<{ logged: unknown[][]; error?: string }> {
    const snippets = readmeBlocks("Try it").filter((block) => block.language === "js");
    assert.equal(snippets.length, 1, "README's Try it has one browser snippet");
    const ports = new Map(Object.entries(DEFAULT_PORTS).map(([name, { rpc }]) => [rpc, system.ports.get(name as keyof typeof DEFAULT_PORTS)?.rpc]));
    const code = withPorts(snippets[0]!.code, (port) => ports.get(port));
    const page = await browser.newPage();
    try {
      await page.goto(`${origin}/`);
      return await page.evaluate(`(async () => {
        const logged = [];
        const console = { log: (...values) => logged.push(values) };
        try {
          ${code}
        } catch (error) {
          return { logged, error: String(error) };
        }
        return { logged };
      })()`);
    } finally {
      await page.close();
    }
  }

  it("signs in and reads the online count from an allowed page (POST, then GET with a token)", async () => {
    const result = await runSnippet(`http://localhost:${pagePort}`);
    assert.equal(result.error, undefined);
    assert.deepEqual(result.logged, [[{ count: "1" }]]);
  });

  it("is blocked by the browser on a page whose origin is not allowed", async () => {
    const result = await runSnippet(`http://127.0.0.1:${pagePort}`);
    assert.match(result.error ?? "", /TypeError: Failed to fetch/);
    assert.deepEqual(result.logged, []);
  });
});

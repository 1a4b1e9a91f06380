import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { startConsoleServer } from "../../console/server.ts";
import { ROOT, SERVICES, waitFor } from "../../scripts/lib/system.ts";
import { ADMIN, TestSystem } from "../support/harness.ts";

const run = promisify(execFile);
export const CHROMIUM = "/usr/bin/chromium";
export const CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const SCREENSHOTS = path.join(ROOT, "docs/images");

/**
 * The web console in headless Chromium against a whole running system: two people in two pages,
 * the live count, the event stream, the checkout saga confirmed and refunded, views shaped by role.
 */
describe("the web console in a browser", function () {
  this.timeout(180_000);
  const system = new TestSystem({ env: { presence: { WATCH_HEARTBEAT_SECONDS: "2" } } });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "meshwork-chromium-"));
  let consoleServer: Awaited<ReturnType<typeof startConsoleServer>>;
  let browser: BrowserContext;
  let origin = "";
  let adminPage: Page;
  let memberPage: Page;
  const member = { email: `console-${Date.now()}@example.com`, password: "a-console-passphrase", name: "Grace" };

  before(async () => {
    // The app as `make dev` serves it; built first, so the build does not slow the services' start.
    await run(process.execPath, [path.join(ROOT, "node_modules/vite/bin/vite.js"), "build", "--logLevel", "warn"], { cwd: path.join(ROOT, "console") });
    await system.start();
    consoleServer = await startConsoleServer({
      host: "127.0.0.1",
      port: 0,
      distDir: path.join(ROOT, "console/dist"),
      upstreams: Object.fromEntries(SERVICES.map((name) => [name, system.baseUrl(name)])),
      adminUpstreams: Object.fromEntries(SERVICES.map((name) => [name, system.adminUrl(name)])),
      traceUiUrl: "http://127.0.0.1:16686/trace/{traceId}",
    });
    origin = `http://127.0.0.1:${consoleServer.port}`;
    browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_FLAGS, viewport: { width: 1400, height: 1000 } });
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
  });
  after(async () => {
    // Each one even when another fails: a browser left running would keep mocha alive.
    await Promise.allSettled([browser?.close(), consoleServer?.close()]);
    await system.stop();
    fs.rmSync(profile, { recursive: true, force: true });
  });

  const signIn = async (page: Page, email: string, password: string) => {
    await page.fill("#sign-in [name=email]", email);
    await page.fill("#sign-in [name=password]", password);
    await page.click("#sign-in button");
    await page.waitForFunction(() => document.querySelector("#sign-out") || /:/.test(document.querySelector("#auth-status")?.textContent ?? ""));
    if (!(await page.$("#sign-out"))) assert.fail(`sign-in failed: ${await page.textContent("#auth-status")}`);
  };
  const onlineCount = async (page: Page) => Number(await page.textContent("#online-count"));

  it("signs in as admin and shows the live count, fresh", async () => {
    adminPage = await browser.newPage();
    await adminPage.goto(origin);
    await signIn(adminPage, ADMIN.email, ADMIN.password);
    await adminPage.waitForFunction(() => /^\d+$/.test(document.querySelector("#online-count")?.textContent ?? ""));
    assert.equal(await onlineCount(adminPage), 1, "the admin is the only one online");
    assert.equal(await adminPage.getAttribute("#online-count", "data-stale"), "false");
  });

  it("a new user signing up in another page raises the first page's count", async () => {
    memberPage = await browser.newPage();
    await memberPage.goto(origin);
    await memberPage.fill("#sign-up [name=displayName]", member.name);
    await memberPage.fill("#sign-up [name=email]", member.email);
    await memberPage.fill("#sign-up [name=password]", member.password);
    await memberPage.click("#sign-up button");
    await memberPage.waitForSelector("#sign-out");
    await adminPage.waitForFunction(() => document.querySelector("#online-count")?.textContent === "2", undefined, { timeout: 15_000 });
  });

  it("shows the member's SignedIn event in the admin's stream, with a trace link", async () => {
    const row = adminPage.locator('#events tr[data-subject="identity.v1.user.signed_in"]', { hasText: "" }).filter({ has: adminPage.locator("pre", { hasText: member.email }) });
    await row.first().waitFor({ state: "attached", timeout: 15_000 });
    const href = await row.first().locator("a.trace-link").getAttribute("href");
    assert.match(href ?? "", /^http:\/\/127\.0\.0\.1:16686\/trace\/[0-9a-f]{32}$/);
  });

  it("places an order and sees it confirmed", async () => {
    await memberPage.selectOption("#order-country", "GB");
    await memberPage.click("#place-order button");
    const order = memberPage.locator(".order").first();
    await memberPage.waitForSelector('.order[data-outcome="confirmed"]', { timeout: 30_000 });
    assert.match(await order.locator(".states").innerText(), /PENDING[^]*CONFIRMED/);
    assert.match(await order.locator(".outcome").innerText(), /confirmed: payment .+, shipment .+/);
  });

  it("places an order to country XX and sees it refunded", async () => {
    await memberPage.selectOption("#order-country", "XX");
    await memberPage.click("#place-order button");
    await memberPage.waitForSelector('.order[data-outcome="refunded"]', { timeout: 60_000 });
    assert.match(await memberPage.locator('.order[data-outcome="refunded"] .outcome').innerText(), /charged, then refunded \(destination not serviceable/);
    await adminPage.fill("#subject-prefix", "payments.");
    await adminPage.press("#subject-prefix", "Enter");
    await adminPage.waitForSelector('#events tr[data-subject="payments.v1.payment.refunded"]', { state: "attached", timeout: 15_000 });
    await adminPage.fill("#subject-prefix", "");
    await adminPage.press("#subject-prefix", "Enter");
    await adminPage.waitForSelector('#events tr[data-subject="identity.v1.user.signed_in"]', { state: "attached" });
  });

  it("shapes the views by role: the member sees no events, online users or dead letters; the admin does", async () => {
    for (const selector of ["#events", "#online-users", "#dead-letters", "#deprecated-calls"]) {
      assert.equal(await memberPage.locator(selector).count(), 0, `member sees no ${selector}`);
      assert.equal(await adminPage.locator(selector).count(), 1, `admin sees ${selector}`);
    }
    await adminPage.waitForSelector(`#online-users td:text("${member.email}")`);
    await adminPage.waitForSelector("#dead-letters td.muted");
    await adminPage.screenshot({ path: path.join(SCREENSHOTS, "console-admin.png"), fullPage: true });
    await memberPage.screenshot({ path: path.join(SCREENSHOTS, "console-member.png"), fullPage: true });
  });

  it("keeps the token in memory only: nothing in storage or cookies, and a reload signs out", async () => {
    for (const page of [adminPage, memberPage]) {
      const stored = await page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length, cookie: document.cookie }));
      assert.deepEqual(stored, { local: 0, session: 0, cookie: "" });
    }
    await memberPage.reload();
    await memberPage.waitForSelector("#sign-in");
  });

  it("signs out: the admin's page shows one session fewer", async () => {
    // Counted from what the page shows, since other sessions come and go (orders' service
    // account signs in for the saga).
    const sessions = async () => Number(/\d+/.exec((await adminPage.textContent("#online-sessions")) ?? "")?.[0]);
    const before = await sessions();
    await signIn(memberPage, member.email, member.password);
    await waitFor(async () => (await sessions()) === before + 1, "the new session on the admin's page", 15_000, 200);
    await memberPage.click("#sign-out");
    await memberPage.waitForSelector("#sign-in");
    assert.equal(await memberPage.textContent("#auth-status"), "Signed out.");
    await waitFor(async () => (await sessions()) === before, "one session fewer on the admin's page", 15_000, 200);
  });

  it("returns to the sign-in form with a reason when the token expires", async () => {
    // Last: the clock is installed for the whole browser context.
    const page = await browser.newPage();
    await page.clock.install();
    await page.goto(origin);
    await signIn(page, member.email, member.password);
    await page.clock.fastForward("16:00");
    await page.waitForSelector("#sign-in");
    assert.match((await page.textContent("#auth-status")) ?? "", /expired/);
    await page.close();
  });
});

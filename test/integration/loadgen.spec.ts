import assert from "node:assert/strict";
import http from "node:http";
import type net from "node:net";
import { startConsoleServer } from "../../console/server.ts";
import { SERVICES, spawnManaged } from "../../scripts/lib/system.ts";
import { TestSystem } from "../support/harness.ts";

const JOURNEYS = ["sign-up", "sign-in", "count", "place-order", "sign-out"];

/** `make load` (loadgen/) against a running system: what it drives, and what it reports. */
describe("the load generator", function () {
  this.timeout(120_000);
  const system = new TestSystem();
  before(() => system.start());
  after(() => system.stop());

  const load = (env: NodeJS.ProcessEnv) => {
    const run = spawnManaged("loadgen", process.execPath, ["loadgen/src/main.ts"], {
      env: { IDENTITY_URL: system.baseUrl("identity"), PRESENCE_URL: system.baseUrl("presence"), ORDERS_URL: system.baseUrl("orders"), ...env },
    });
    return run.exited.then((code) => ({ code, output: run.output() }));
  };

  it("runs every weighted journey for a bounded time with no errors, then prints rate, errors and latency per journey", async () => {
    // Equal weights and half the orders to XX, so both ends of the saga (confirmed, refunded) are driven.
    const started = performance.now();
    const { code, output } = await load({ LOAD_USERS: "6", LOAD_RATE: "10", LOAD_DURATION_SECONDS: "4", LOAD_WEIGHTS: JOURNEYS.map((journey) => `${journey}=1`).join(","), LOAD_REFUND_SHARE: "0.5" });
    assert.equal(code, 0, output);
    assert.ok(performance.now() - started < 60_000, "bounded: it stops by itself");
    assert.match(output, /^journey +count +rate\/s +errors +p50 ms +p95 ms +p99 ms +max ms$/m, output);
    let total = 0;
    for (const journey of [...JOURNEYS, "all"]) {
      const row = new RegExp(`^${journey} +(\\d+) +([\\d.]+) +(\\d+) +([\\d.]+) +([\\d.]+) +([\\d.]+) +([\\d.]+)$`, "m").exec(output);
      assert.ok(row, `a row for ${journey}:\n${output}`);
      assert.ok(Number(row[1]) > 0, `${journey} ran:\n${output}`);
      assert.equal(row[3], "0", `${journey} had no errors:\n${output}`);
      if (journey !== "all") total += Number(row[1]);
      else assert.equal(Number(row[1]), total, "the all row sums the journeys");
    }
    assert.match(output, new RegExp(`^${total} journeys completed, 0 errors, \\d+ not started \\(all users busy\\) in [\\d.]+ s$`, "m"));
  });

  it("drives one origin that routes on a hostname, as the gateway does in a cluster (LOAD_BASE_URL, LOAD_HOST)", async () => {
    // The console's server routes every RPC path to its service, like the gateway; in front of it,
    // a listener that, like a gateway route with a hostname, answers 404 to any other Host.
    const origin = await startConsoleServer({
      host: "127.0.0.1",
      port: 0,
      distDir: "/nonexistent",
      upstreams: Object.fromEntries(SERVICES.map((name) => [name, system.baseUrl(name)])),
      adminUpstreams: {},
    });
    const hosts = new Set<string>();
    const edge = http.createServer((req, res) => {
      hosts.add(req.headers.host ?? "");
      if (req.headers.host !== "shop.example.test") return void res.writeHead(404).end();
      const upstream = http.request({ host: "127.0.0.1", port: origin.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => edge.listen(0, "127.0.0.1", resolve));
    try {
      const base = `http://127.0.0.1:${(edge.address() as net.AddressInfo).port}`;
      const { code, output } = await load({ LOAD_BASE_URL: base, LOAD_HOST: "shop.example.test", LOAD_USERS: "3", LOAD_RATE: "6", LOAD_DURATION_SECONDS: "2", LOAD_REFUND_SHARE: "0" });
      assert.equal(code, 0, output);
      assert.match(output, /\(Host: shop\.example\.test\)/);
      assert.match(output, /journeys completed, 0 errors/);
      assert.deepEqual([...hosts], ["shop.example.test"], "every call carried the hostname");
    } finally {
      edge.close();
      edge.closeAllConnections();
      await origin.close();
    }
  });

  it("exits 1 and counts the errors when journeys fail", async () => {
    // Orders are answered by nothing: every place-order journey fails the way a user would see it.
    const { code, output } = await load({ ORDERS_URL: "http://127.0.0.1:9", LOAD_USERS: "2", LOAD_RATE: "4", LOAD_DURATION_SECONDS: "1", LOAD_WEIGHTS: "place-order=1" });
    assert.equal(code, 1, output);
    const row = /^place-order +(\d+) +[\d.]+ +(\d+) /m.exec(output);
    assert.ok(row && Number(row[2]) > 0 && row[1] === row[2], output);
  });

  it("refuses a bad setting with exit 2 and the reason, before calling anything", async () => {
    const { code, output } = await load({ LOAD_WEIGHTS: "checkout=1" });
    assert.equal(code, 2, output);
    assert.match(output, /LOAD_WEIGHTS: "checkout=1" is not <journey>=<weight> with a journey among sign-up, sign-in, count, place-order, sign-out/);
  });
});

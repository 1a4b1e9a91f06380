/**
 * `make load`: drives a running Meshwork as its users would, for a bounded time, then prints the
 * rate, errors and latency of each journey. Exits non-zero when any journey failed.
 *
 *   LOAD_USERS (10)              simulated users, i.e. at most this many journeys at once
 *   LOAD_RATE (5)                journeys started per second, over all users
 *   LOAD_DURATION_SECONDS (30)   how long to start journeys (the run then waits for those in flight)
 *   LOAD_WEIGHTS                 e.g. "sign-up=1,sign-in=3,count=6,place-order=2,sign-out=1"
 *   LOAD_REFUND_SHARE (0.1)      share of orders shipped to XX, which the saga refunds
 *   LOAD_BASE_URL                one origin for every service (the gateway, or the console's server),
 *   LOAD_HOST                    the Host header to send, when the gateway routes on a hostname that
 *                                is not the base URL's (in a cluster: the gateway's own Service)
 *   or IDENTITY_URL, PRESENCE_URL, ORDERS_URL   one per service (default: make dev's ports)
 *
 * `--check-config` validates the settings above, prints the plan and exits 0 without calling
 * anything (scripts/build-images.sh starts the image once that way).
 *
 * A small TypeScript driver rather than k6 or Locust: it calls the services through the same
 * generated Connect clients and protocol as the console and the services themselves, so a
 * contract change breaks it at compile time, and it needs nothing the repository does not have.
 */
import { randomBytes } from "node:crypto";
import { createConnectTransport } from "@connectrpc/connect-node";
import { clientsFor, DEFAULT_WEIGHTS, JOURNEYS, runJourney, type Journey, type VirtualUser } from "./journeys.ts";
import { Tally } from "./report.ts";

const env = process.env;
const users = positiveNumber("LOAD_USERS", 10);
const rate = positiveNumber("LOAD_RATE", 5);
const durationSeconds = positiveNumber("LOAD_DURATION_SECONDS", 30);
const refundShare = shareOfOne("LOAD_REFUND_SHARE", 0.1);
const weights = parseWeights(env["LOAD_WEIGHTS"]);
const baseUrl = (service: string, port: number) => env["LOAD_BASE_URL"] ?? env[`${service.toUpperCase()}_URL`] ?? `http://127.0.0.1:${port}`;
const host = env["LOAD_HOST"];
const transport = (url: string) =>
  createConnectTransport({
    baseUrl: url,
    httpVersion: "1.1",
    interceptors: host
      ? [
          (next) => (request) => {
            request.header.set("host", host);
            return next(request);
          },
        ]
      : [],
  });
const clients = clientsFor({ identity: transport(baseUrl("identity", 50051)), presence: transport(baseUrl("presence", 50052)), orders: transport(baseUrl("orders", 50054)) });

const run = randomBytes(3).toString("hex");
const idle: VirtualUser[] = Array.from({ length: users }, (_, index) => ({ email: `load-${run}-${index}@example.com`, password: `load-passphrase-${run}-${index}` }));
const tally = new Tally();
const inFlight = new Set<Promise<void>>();
let skipped = 0;

console.log(`load: ${users} users, ${rate} journeys/s for ${durationSeconds} s against ${env["LOAD_BASE_URL"] ?? "the services' own ports"}${host ? ` (Host: ${host})` : ""}; weights ${JSON.stringify(weights)}`);
if (process.argv.includes("--check-config")) process.exit(0);
const started = performance.now();
const intervalMs = 1000 / rate;
for (let next = started; next < started + durationSeconds * 1000; next += intervalMs) {
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now())));
  const user = idle.shift();
  // Every user is busy: the system is slower than the offered rate. Counted, not queued, so the
  // offered load stays what was asked for.
  if (!user) {
    skipped++;
    continue;
  }
  const journey = pick(weights);
  const begin = performance.now();
  const work = runJourney(journey, user, clients, { orderTimeoutMs: 30_000, refundShare })
    .then(
      () => tally.success(journey, performance.now() - begin),
      (error: Error) => tally.failure(journey, error.message),
    )
    .finally(() => {
      idle.push(user);
      inFlight.delete(work);
    });
  inFlight.add(work);
}
await Promise.all(inFlight);
const seconds = (performance.now() - started) / 1000;

console.log(`\n${tally.summary(JOURNEYS, seconds)}`);
console.log(`\n${tally.completed} journeys completed, ${tally.errors} errors, ${skipped} not started (all users busy) in ${seconds.toFixed(1)} s`);
process.exit(tally.errors > 0 ? 1 : 0);

function pick(table: Record<Journey, number>): Journey {
  const total = Object.values(table).reduce((a, b) => a + b, 0);
  let roll = Math.random() * total;
  for (const journey of JOURNEYS) {
    roll -= table[journey];
    if (roll < 0) return journey;
  }
  return JOURNEYS[0];
}

function parseWeights(text: string | undefined): Record<Journey, number> {
  if (!text) return DEFAULT_WEIGHTS;
  const table = Object.fromEntries(JOURNEYS.map((journey) => [journey, 0])) as Record<Journey, number>;
  for (const part of text.split(",")) {
    const [name, value] = part.split("=").map((piece) => piece.trim());
    if (!JOURNEYS.includes(name as Journey) || !(Number(value) >= 0)) fail(`LOAD_WEIGHTS: "${part}" is not <journey>=<weight> with a journey among ${JOURNEYS.join(", ")}`);
    table[name as Journey] = Number(value);
  }
  if (Object.values(table).every((weight) => weight === 0)) fail("LOAD_WEIGHTS: every weight is zero");
  return table;
}

function positiveNumber(name: string, fallback: number): number {
  const value = Number(env[name] ?? fallback);
  if (!(value > 0)) fail(`${name} must be a positive number, not "${env[name]}"`);
  return value;
}

function shareOfOne(name: string, fallback: number): number {
  const value = Number(env[name] ?? fallback);
  if (!(value >= 0 && value <= 1)) fail(`${name} must be a number from 0 to 1, not "${env[name]}"`);
  return value;
}

function fail(message: string): never {
  console.error(`load: ${message}`);
  process.exit(2);
}

/**
 * A sign-in's database work in one process, without the hash, the RPC or NATS: the throttle and
 * user reads identity makes before the argon2id verify, and the session plus outbox commit it
 * makes after it, each timed on its own (docs/performance.md, sixth round).
 *
 *   node bench/workers/signin-db.ts [sign-ins] [passes] [hash|sleep]   µs per read phase and per commit, medians
 *
 * With `hash`, each sign-in verifies an argon2id hash with identity's parameters (on the thread
 * pool, as identity does) between its reads and its commit, so the commit runs when the hash has
 * just evicted the caches, as in the service; with `sleep`, the thread idles as long instead (no
 * eviction); without either the loop keeps everything warm.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { hash, verify } from "@node-rs/argon2";
import { startTelemetry } from "../../services/platform/src/telemetry.ts";

// As in the service: telemetry first (no exporter, so nothing is sampled), then everything else.
await startTelemetry({ serviceName: "identity", serviceVersion: "bench", environment: "bench" });
const { openDatabase, uuidv7 } = await import("@meshwork/platform");
const { recordSignIn } = await import("../../services/identity/src/accounts.ts");
const { migrations, failureLog, findUserByEmail, insertUser } = await import("../../services/identity/src/store.ts");
type IdentityTables = import("../../services/identity/src/store.ts").IdentityTables;

const signIns = Number(process.argv[2] ?? 2_000);
const passes = Number(process.argv[3] ?? 5);
const between = process.argv[4];
const withHash = between === "hash";
const { identityConfig } = await import("../../services/identity/src/config.ts");
const defaults = identityConfig({ RPC_PORT: "0", ADMIN_PORT: "0" });
// @node-rs/argon2 exports Algorithm as a const enum, which type stripping cannot inline: 2 is argon2id.
const passwordHash = await hash("a-long-benchmark-password", { algorithm: 2, memoryCost: defaults.ARGON2_MEMORY_KIB, timeCost: defaults.ARGON2_ITERATIONS, parallelism: defaults.ARGON2_PARALLELISM });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "signin-db-"));
const database = await openDatabase<IdentityTables>(path.join(dir, "identity.db"), migrations);
const db = database.db;
const log = failureLog(db);
const user = { id: uuidv7(), email: "bench@example.com", displayName: "Bench", passwordHash: "$argon2id$v=19$m=19456,t=2,p=1$x$y", roles: ["member" as const] };
await insertUser(db, user);

const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
for (let pass = 1; pass <= passes; pass++) {
  const reads: number[] = [];
  const commits: number[] = [];
  const cpuStarted = process.cpuUsage();
  for (let i = 0; i < signIns; i++) {
    const readStarted = performance.now();
    const now = Date.now();
    await log.failuresAfter(`account:${user.email}`, now - 900_000);
    await log.failuresAfter("address:127.0.0.1", now - 900_000);
    await findUserByEmail(db, user.email);
    reads.push(performance.now() - readStarted);
    if (withHash && !(await verify(passwordHash, "a-long-benchmark-password"))) throw new Error("argon2 verify failed");
    if (between === "sleep") await new Promise((resolve) => setTimeout(resolve, 17));
    const sessionId = uuidv7();
    const expiresAt = Date.now() + 900_000;
    const commitStarted = performance.now();
    await db.transaction().execute((trx) => recordSignIn(trx, user, sessionId, expiresAt));
    commits.push(performance.now() - commitStarted);
  }
  const cpu = process.cpuUsage(cpuStarted);
  console.log(
    `pass ${pass}${between ? ` (a ${between} before each commit)` : ""}: reads ${(median(reads) * 1000).toFixed(0)} µs, commit ${(median(commits) * 1000).toFixed(0)} µs (medians)${between ? "" : `; CPU ${((cpu.user + cpu.system) / signIns).toFixed(0)} µs per sign-in`}`,
  );
}
await database.close();
fs.rmSync(dir, { recursive: true, force: true });

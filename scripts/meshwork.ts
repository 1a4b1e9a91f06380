#!/usr/bin/env node
/**
 * meshwork: operator commands for a running Meshwork.
 *
 *   meshwork presence rebuild                     drop presence's projection and rebuild it from IDENTITY
 *   meshwork deadletters list [--consumer NAME]   show dead letters with the reason they failed
 *   meshwork deadletters replay [--consumer NAME] [--seq N]
 *                                                 put dead letters back on their subject (after the fix)
 *   meshwork keys rotate [--file PATH] [--token-ttl SECONDS]
 *                                                 add a new signing key; prune keys no token can still use
 *
 * Connection settings come from flags or the environment: --nats (NATS_URL), --presence
 * (PRESENCE_URL), --identity (IDENTITY_URL), and an admin's --token (MESHWORK_TOKEN) or --email/--password
 * (MESHWORK_ADMIN_EMAIL / MESHWORK_ADMIN_PASSWORD, or .data/admin-credentials.json from make dev).
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { createServiceClient, listDeadLetters, replayDeadLetter } from "@meshwork/platform";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { PresenceAdminService } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import { rotateKeyFile } from "../services/identity/src/signing-keys.ts";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    nats: { type: "string", default: process.env["NATS_URL"] ?? "nats://127.0.0.1:4222" },
    identity: { type: "string", default: process.env["IDENTITY_URL"] ?? "http://127.0.0.1:50051" },
    presence: { type: "string", default: process.env["PRESENCE_URL"] ?? "http://127.0.0.1:50052" },
    email: { type: "string", default: process.env["MESHWORK_ADMIN_EMAIL"] },
    password: { type: "string", default: process.env["MESHWORK_ADMIN_PASSWORD"] },
    token: { type: "string", default: process.env["MESHWORK_TOKEN"] },
    consumer: { type: "string" },
    seq: { type: "string" },
    file: { type: "string", default: process.env["SIGNING_KEYS_FILE"] ?? ".data/identity/signing-keys.json" },
    "token-ttl": { type: "string", default: process.env["ACCESS_TOKEN_TTL_SECONDS"] ?? "900" },
    json: { type: "boolean", default: false },
  },
});

const [group, command] = positionals;
const output = (value: unknown, text: string) => console.log(values.json ? JSON.stringify(value) : text);

try {
  if (group === "presence" && command === "rebuild") {
    const presence = createServiceClient(PresenceAdminService, values.presence);
    const result = await presence.rebuildProjection({}, { headers: { authorization: `Bearer ${await adminToken()}` } });
    output(
      { eventsApplied: Number(result.eventsApplied), onlineUsers: Number(result.onlineUsers) },
      `rebuilt presence from IDENTITY: ${result.eventsApplied} events applied, ${result.onlineUsers} users online`,
    );
  } else if (group === "deadletters" && (command === "list" || command === "replay")) {
    const connection = await connect({ servers: values.nats });
    try {
      const letters = await listDeadLetters(connection, values.consumer);
      const chosen = values.seq ? letters.filter((letter) => letter.sequence === Number(values.seq)) : letters;
      if (command === "list") {
        output(chosen, chosen.length === 0 ? "no dead letters" : chosen.map((l) => `#${l.sequence} ${l.consumer} ${l.originalSubject} event=${l.eventId} tries=${l.deliveries} error=${l.error}`).join("\n"));
      } else {
        for (const letter of chosen) await replayDeadLetter(connection, letter.sequence);
        output({ replayed: chosen.map((letter) => letter.sequence) }, `replayed ${chosen.length} dead letter(s) to their original subjects`);
      }
    } finally {
      await connection.close();
    }
  } else if (group === "keys" && command === "rotate") {
    const result = await rotateKeyFile(values.file, Number(values["token-ttl"]));
    output(result, `added signing key ${result.added}${result.removed.length ? `; removed ${result.removed.join(", ")}` : ""} in ${values.file}`);
  } else {
    console.error("usage: meshwork presence rebuild | deadletters list|replay [--consumer NAME] [--seq N] | keys rotate [--file PATH]");
    process.exit(2);
  }
} catch (error) {
  console.error(`meshwork: ${(error as Error).message}`);
  process.exit(1);
}

async function adminToken(): Promise<string> {
  if (values.token) return values.token;
  let { email, password } = values;
  const saved = path.join(".data", "admin-credentials.json");
  if ((!email || !password) && fs.existsSync(saved)) ({ email, password } = JSON.parse(fs.readFileSync(saved, "utf8")) as { email: string; password: string });
  if (!email || !password) throw new Error("admin credentials needed: --email and --password, or MESHWORK_ADMIN_EMAIL / MESHWORK_ADMIN_PASSWORD");
  const identity = createServiceClient(IdentityService, values.identity);
  return (await identity.signIn({ email, password })).accessToken;
}

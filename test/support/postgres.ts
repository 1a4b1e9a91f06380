import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort, spawnManaged, waitFor, type ManagedProcess } from "../../scripts/lib/system.ts";

const BIN = "/usr/lib/postgresql/15/bin";

/** Whether this machine can run a throwaway PostgreSQL (Debian's postgresql-15 binaries). */
export function postgresAvailable(): boolean {
  return fs.existsSync(path.join(BIN, "postgres"));
}

/**
 * A throwaway PostgreSQL cluster in a temp directory on a random loopback port, with one database
 * and one user per service, as in a real cluster. initdb refuses to run as root, so when the
 * tests run as root the cluster runs as the `postgres` system user.
 */
export class ThrowawayPostgres {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "meshwork-pg-"));
  port = 0;
  private server: ManagedProcess | undefined;

  async start(databases: string[]): Promise<this> {
    this.port = await freePort();
    const asRoot = process.getuid?.() === 0;
    const wrap = (command: string, args: string[]): [string, string[]] => (asRoot ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, args]);
    if (asRoot) execFileSync("chown", ["postgres", this.dir]);
    const data = path.join(this.dir, "data");
    execFileSync(...wrap(path.join(BIN, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"]), { stdio: "ignore" });
    const [command, args] = wrap(path.join(BIN, "postgres"), ["-D", data, "-p", String(this.port), "-k", this.dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]);
    this.server = spawnManaged("postgres", command, args, {});
    await waitFor(() => this.query("select 1").then(() => true, () => false), "postgres to accept connections", 20_000, 200);
    for (const name of databases) {
      await this.query(`create user ${name} password '${name}-secret'`);
      await this.query(`create database ${name} owner ${name}`);
      await this.query(`revoke all on database ${name} from public`);
    }
    return this;
  }

  url(name: string): string {
    return `postgres://${name}:${name}-secret@127.0.0.1:${this.port}/${name}`;
  }

  async query(sql: string, database = "postgres", user = "postgres"): Promise<string> {
    const { default: pg } = await import("pg");
    const client = new pg.Client({ host: "127.0.0.1", port: this.port, user, database, password: `${user}-secret` });
    await client.connect();
    try {
      const result = await client.query(sql);
      return JSON.stringify(result.rows);
    } finally {
      await client.end();
    }
  }

  async stop(): Promise<void> {
    await this.server?.stop("SIGTERM");
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

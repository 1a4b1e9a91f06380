// README.md's "Try it" is what a new user types first. Every shell block of it runs here, in
// order and in one shell (later blocks use $TOKEN from earlier ones), against `make dev` itself
// (scripts/dev.ts, on shifted ports), so a command that drifts from the system fails CI.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT, spawnManaged, waitFor } from "../../scripts/lib/system.ts";
import { readmeBlocks, withPorts } from "../support/readme.ts";
import { freeOffset } from "../support/dev-ports.ts";

/** What each shell block of "Try it" must print, in README order: one entry per block. */
const EXPECTED: RegExp[][] = [
  // sign up; TOKEN from sign in (printed by the block's last line below)
  [/"email":"ada@example\.com"/, /^TOKEN=ey[\w-]+\.[\w-]+\.[\w-]+$/m],
  // online count: POST, then GET with its headers
  [/\{"count":"1"\}/, /HTTP\/1\.1 200 OK/, /cache-control: no-store/i],
  // grpcurl by reflection alone
  [
    /^meshwork\.presence\.v1\.PresenceService$/m,
    /^grpc\.reflection\.v1\.ServerReflection$/m,
    /rpc SignIn \( \.meshwork\.identity\.v1\.SignInRequest \)/,
    /"accessToken": "ey/,
    /"count": "1"/,
    /"status": "SERVING"/,
  ],
  // wrong password
  [/"code":"unauthenticated"/],
  // roles: member refused, admin sees emails, audit lists events
  [/"code":"permission_denied"/, /"email":"ada@example\.com"/, /"events":\[\{/],
];

describe("README: Try it", function () {
  this.timeout(180_000);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "meshwork-readme-"));
  const dataDir = path.join(home, ".data");
  let offset = 0;
  let dev: ReturnType<typeof spawnManaged> | undefined;

  before(async () => {
    offset = await freeOffset();
    dev = spawnManaged("dev", process.execPath, ["scripts/dev.ts"], {
      env: { MESHWORK_DEV_DATA_DIR: dataDir, MESHWORK_DEV_PORT_OFFSET: String(offset), MESHWORK_ADMIN_PASSWORD: "", MESHWORK_ADMIN_EMAIL: "",
        // make-dev.spec.ts times the start; this test only needs the system up.
        MESHWORK_DEV_READY_TIMEOUT_MS: "90000",
      },
    });
    await waitFor(() => /Meshwork is up in/.test(dev!.output()) || dev!.child.exitCode !== null, "make dev", 100_000, 100);
    assert.match(dev.output(), /Meshwork is up in/, dev.output());
  });
  after(async () => {
    dev?.child.kill("SIGINT");
    await dev?.exited;
    fs.rmSync(home, { recursive: true, force: true });
  });

  it("runs every shell block and each prints what the README promises", async () => {
    const blocks = readmeBlocks("Try it").filter((block) => block.language === "sh");
    assert.equal(blocks.length, EXPECTED.length, "a shell block was added or removed: say here what it must print");
    // One shell for all blocks, as a reader's terminal is, stopping at the first failing command;
    // each block's output is kept apart.
    const script = blocks
      .map((block, index) => {
        const code = withPorts(block.code, (port) => port + offset).replaceAll(".data/admin-credentials.json", path.join(dataDir, "admin-credentials.json"));
        const after = index === 0 ? 'echo; echo "TOKEN=$TOKEN"\n' : "";
        return `echo "::block ${index}"\n${code}\n${after}echo; echo "::end ${index}"`;
      })
      .join("\n");
    const { stdout, stderr } = await runShell(script);
    for (const [index, expectations] of EXPECTED.entries()) {
      const output = stdout.split(`::block ${index}\n`)[1]?.split(`::end ${index}\n`)[0] ?? "";
      assert.ok(stdout.includes(`::end ${index}\n`), `block ${index} failed:\n${blocks[index]!.code}\nprinted:\n${output}\n${stderr}`);
      for (const expected of expectations) assert.match(output, expected, `block ${index}:\n${blocks[index]!.code}\nprinted:\n${output}\n${stderr}`);
    }
  });
});

function runShell(script: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // grpcurl from .tools/bin and buf from node_modules/.bin, as `make` puts them on PATH.
    const env = { ...process.env, PATH: [path.join(ROOT, ".tools/bin"), path.join(ROOT, "node_modules/.bin"), process.env["PATH"]].join(":") };
    const shell = spawn("bash", ["-e", "-o", "pipefail", "-c", script], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    shell.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    shell.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    shell.once("error", reject);
    shell.once("close", () => resolve({ stdout, stderr }));
  });
}

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { rotateKeyFile, SigningKeys } from "../../src/signing-keys.ts";

describe("signing keys", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "meshwork-keys-"));
  const file = path.join(dir, "keys.json");
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("creates a key for development, publishes only public parts, and rotates to a new signer", async () => {
    const keys = await SigningKeys.open(file, { create: true });
    const first = keys.current.kid;
    assert.equal(keys.jwks().keys.length, 1);
    assert.equal((keys.jwks().keys[0] as { d?: string }).d, undefined, "no private part in the JWKS");
    const rotation = await rotateKeyFile(file, 900);
    await keys.reload();
    assert.notEqual(keys.current.kid, first);
    assert.equal(keys.current.kid, rotation.added);
    assert.deepEqual(keys.jwks().keys.map((key) => key.kid), [first, rotation.added]);
    keys.close();
  });

  it("drops keys superseded longer ago than the token lifetime", async () => {
    const later = new Date(Date.now() + 3_600_000);
    const { removed } = await rotateKeyFile(file, 900, later);
    assert.equal(removed.length, 1, "the first key, superseded an hour before, is gone");
    const content = JSON.parse(fs.readFileSync(file, "utf8")) as { keys: unknown[] };
    assert.equal(content.keys.length, 2);
  });

  it("reads a PEM key as Helm's genPrivateKey writes it", async () => {
    const { execFileSync } = await import("node:child_process");
    const pem = path.join(dir, "key.pem");
    execFileSync("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", pem]);
    const keys = await SigningKeys.open(pem, { create: false });
    assert.match(keys.current.kid, /^[\w-]{43}$/);
    keys.close();
  });
});

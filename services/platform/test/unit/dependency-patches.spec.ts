import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { applyPatches, PATCHES, unapplied } from "../../../../scripts/patch-dependencies.ts";

const nodeModules = path.resolve(import.meta.dirname, "../../../../node_modules");

describe("dependency patches (scripts/patch-dependencies.ts)", () => {
  it("are applied to the installed packages (npm install runs them as postinstall)", () => {
    assert.deepEqual(unapplied(nodeModules), []);
  });

  it("still target the installed versions: a version bump fails until someone checks whether upstream fixed it", () => {
    for (const patch of PATCHES) {
      const installed = JSON.parse(fs.readFileSync(path.join(nodeModules, patch.package, "package.json"), "utf8")).version;
      assert.equal(installed, patch.version, `${patch.package}: review the patch for ${installed}`);
    }
  });

  it("refuse to apply when the text they replace is gone (upstream changed it)", () => {
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "meshwork-patch-"));
    try {
      const patch = PATCHES[0]!;
      const root = path.join(scratch, patch.package);
      fs.mkdirSync(path.join(root, "dist/esm"), { recursive: true });
      fs.mkdirSync(path.join(root, "dist/cjs"), { recursive: true });
      fs.writeFileSync(path.join(root, "package.json"), JSON.stringify({ version: patch.version }));
      for (const file of patch.files) fs.writeFileSync(path.join(root, file), "abortController.abort(new Error('upstream now passes a reason'));\n");
      assert.throws(() => applyPatches(scratch), /upstream changed, review the patch/);
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });
});

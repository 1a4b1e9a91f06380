import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const stackTracesModule = fileURLToPath(new URL("../../src/stack-traces.ts", import.meta.url));

/**
 * A small program bundled the way scripts/bundle-services.ts bundles a service (one ES module,
 * a linked source map without sources' text), whose failing function sits on a known line of its
 * TypeScript. It reports which files it read and the stacks it formatted, as JSON.
 */
async function bundleProbe(dir: string): Promise<string> {
  fs.writeFileSync(
    path.join(dir, "failing.ts"),
    ["export class Widget {", "  explode(): never {", "    throw new TypeError(\"widget broke\");", "  }", "}", ""].join("\n"),
  );
  fs.writeFileSync(
    path.join(dir, "entry.ts"),
    `
    import fs from "node:fs";
    const reads: string[] = [];
    const readFileSync = fs.readFileSync;
    (fs as { readFileSync: unknown }).readFileSync = (file: fs.PathOrFileDescriptor, ...rest: unknown[]) => {
      reads.push(String(file));
      return (readFileSync as (...args: unknown[]) => unknown)(file, ...rest);
    };
    const { mapStackTracesLazily } = await import(${JSON.stringify(stackTracesModule)});
    const { Widget } = await import("./failing.ts");
    const nodesOwn = Error.prepareStackTrace;
    mapStackTracesLazily(import.meta.url);
    const readAtStart = [...reads];
    const stackOf = () => { try { new Widget().explode(); } catch (error) { return (error as Error).stack; } };
    const first = stackOf();
    const second = stackOf();
    console.log(JSON.stringify({ readAtStart, reads, first, second, installed: Error.prepareStackTrace !== nodesOwn }));
    `,
  );
  const outfile = path.join(dir, "dist", "main.mjs");
  await build({ entryPoints: [path.join(dir, "entry.ts")], bundle: true, platform: "node", format: "esm", target: "node24", outfile, sourcemap: "linked", sourcesContent: false, minifyWhitespace: true, logLevel: "error" });
  return outfile;
}

interface ProbeOutput {
  readAtStart: string[];
  reads: string[];
  first: string;
  second: string;
  installed: boolean;
}

describe("mapStackTracesLazily (a bundle's stack traces name its TypeScript, the map read on the first trace)", () => {
  let dir: string;
  let bundle: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "stack-traces-"));
    bundle = await bundleProbe(dir);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const run = (flags: string[]): ProbeOutput => JSON.parse(execFileSync(process.execPath, [...flags, bundle], { encoding: "utf8" })) as ProbeOutput;

  it("maps frames inside the bundle to the TypeScript file, line and column, keeping V8's frame text", () => {
    const { first, second, installed } = run([]);
    assert.equal(installed, true);
    const lines = first.split("\n");
    assert.equal(lines[0], "TypeError: widget broke");
    // Line 3, column 11 of failing.ts is the `new TypeError`; the method name is V8's own.
    assert.match(lines[1]!, new RegExp(`^    at Widget\\.explode \\(${path.join(dir, "failing.ts").replaceAll(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:3:11\\)$`), first);
    assert.ok(!first.includes("main.mjs:"), `no frame left on the bundle:\n${first}`);
    assert.deepEqual(second.split("\n").slice(0, 3), lines.slice(0, 3));
  });

  it("reads the source map once, on the first trace, not at start", () => {
    const { readAtStart, reads } = run([]);
    const mapReads = (files: string[]) => files.filter((file) => file.endsWith("main.mjs.map"));
    assert.deepEqual(mapReads(readAtStart), []);
    assert.deepEqual(mapReads(reads), [`${bundle}.map`]);
  });

  it("stands aside when Node's own source maps are on, so no frame is mapped twice", () => {
    const { installed, reads, first } = run(["--enable-source-maps"]);
    assert.equal(installed, false);
    assert.ok(!reads.some((file) => file.endsWith(".map")));
    assert.match(first.split("\n")[1]!, /failing\.ts:3:11\)$/);
  });

  it("leaves a frame as V8 prints it when the map is missing", () => {
    fs.renameSync(`${bundle}.map`, `${bundle}.map.away`);
    try {
      const { first } = run([]);
      assert.match(first.split("\n")[1]!, /^    at Widget\.explode \(file:\/\/.*\/dist\/main\.mjs:\d+:\d+\)$/, first);
    } finally {
      fs.renameSync(`${bundle}.map.away`, `${bundle}.map`);
    }
  });
});

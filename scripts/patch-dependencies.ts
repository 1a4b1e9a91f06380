#!/usr/bin/env node
/**
 * Small, documented patches to installed dependencies, applied by `npm install`/`npm ci`
 * (the root package's postinstall) and by the image build before bundling. Each patch names the
 * exact text it replaces in a pinned version; when that text is gone (upstream changed or fixed
 * it), the script fails instead of silently skipping, so a dependency bump makes us look again.
 * services/platform/test/unit/dependency-patches.spec.ts checks that every patch is applied.
 *
 *   node scripts/patch-dependencies.ts [node_modules directory]   (default: ./node_modules)
 *   node scripts/patch-dependencies.ts --check                       exit 1 when one is not applied
 */
import fs from "node:fs";
import path from "node:path";

export interface DependencyPatch {
  package: string;
  version: string;
  files: string[];
  why: string;
  replacements: { from: string; to: string }[];
  /**
   * Appended once at the end of each file (module scope, evaluated before any call). Its first
   * line is the patch's mark comment: a file that contains it is patched (`markOf`).
   */
  append: string;
}

const MARK = "/* meshwork patch: call-ended abort reason */";
const HASH_MARK = "/* meshwork patch: frozen attribute hashes */";
const ANY_VALUE_MARK = "/* meshwork patch: primitive attribute values */";
const SHARED_REASON = `\n${MARK}\nconst MESHWORK_CALL_ENDED = new DOMException("This operation was aborted", "AbortError");\n`;
const WHY =
  "AbortController.abort() without a reason builds a new DOMException, with a captured stack, every time a call ends (about 50 us per call on the bench machine, and garbage). The signal's reason stays an AbortError DOMException with the same name and message; only its identity is shared. Upstream (connect-es 2.3.0, the newest release) still aborts without a reason.";

export const PATCHES: DependencyPatch[] = [
  {
    package: "@connectrpc/connect-node",
    version: "2.3.0",
    files: ["dist/esm/node-universal-handler.js", "dist/cjs/node-universal-handler.js"],
    why: `Server side, once per request when it closes. ${WHY}`,
    replacements: [
      { from: "abortController.abort();", to: "abortController.abort(MESHWORK_CALL_ENDED);" },
      { from: "                : undefined);", to: "                : MESHWORK_CALL_ENDED);" },
    ],
    append: SHARED_REASON,
  },
  {
    package: "@connectrpc/connect",
    version: "2.3.0",
    files: ["dist/esm/protocol/run-call.js", "dist/cjs/protocol/run-call.js"],
    why: `Client side, once per call when it completes (internal service-to-service clients). ${WHY}`,
    replacements: [{ from: "            controller.abort();\n        },", to: "            controller.abort(MESHWORK_CALL_ENDED);\n        }," }],
    append: SHARED_REASON,
  },
  {
    package: "@connectrpc/connect",
    version: "2.3.0",
    files: ["dist/esm/implementation.js", "dist/cjs/implementation.js"],
    why: `Server side, once per call: every protocol's handler calls context.abort() without a reason when the call is done. ${WHY}`,
    replacements: [{ from: "abortController.abort(reason);", to: "abortController.abort(reason ?? MESHWORK_CALL_ENDED);" }],
    append: SHARED_REASON,
  },
  {
    package: "@opentelemetry/sdk-metrics",
    version: "3.1.0",
    files: ["dist/utils.mjs", "dist/utils.cjs"],
    why:
      "Every measurement hashes its attribute set to find its series: the keys sorted, mapped and JSON-stringified, on every call (1-2 % of a service's CPU per RPC, docs/performance.md). A frozen attribute object whose values are all primitives cannot change, so its hash is kept in a WeakMap and computed once; the platform records RPC durations and deprecated calls with frozen sets made once per method, protocol, code and caller. Other objects are hashed as before. Upstream (3.1.0, the newest release) hashes every time.",
    replacements: [
      {
        from: "function hashAttributes(attributes) {\n\tlet keys = Object.keys(attributes);\n\tif (keys.length === 0) return \"\";\n\tkeys = keys.sort();\n\treturn JSON.stringify(keys.map((key) => [key, attributes[key]]));\n}",
        to: "function hashAttributes(attributes) {\n\tconst frozen = Object.isFrozen(attributes);\n\tif (frozen) {\n\t\tconst known = MESHWORK_FROZEN_HASHES.get(attributes);\n\t\tif (known !== undefined) return known;\n\t}\n\tlet keys = Object.keys(attributes);\n\tif (keys.length === 0) return \"\";\n\tkeys = keys.sort();\n\tconst hash = JSON.stringify(keys.map((key) => [key, attributes[key]]));\n\tif (frozen && keys.every((key) => typeof attributes[key] !== \"object\")) MESHWORK_FROZEN_HASHES.set(attributes, hash);\n\treturn hash;\n}",
      },
    ],
    append: `\n${HASH_MARK}\nvar MESHWORK_FROZEN_HASHES = new WeakMap();\n`,
  },
  {
    package: "@opentelemetry/core",
    version: "3.1.0",
    files: ["dist/common/attributes.mjs", "dist/common/attributes.cjs"],
    why:
      "The tracer checks every attribute value of a span it starts twice (cleanAttributes before and after sampling) and once more per setAttribute, and each check allocates a WeakSet (to detect cycles in nested values) before looking at the value's type, so a string, number or boolean, which cannot be part of a cycle, costs an allocation each time: about 20 per sampled RPC. Primitives are now answered before the WeakSet is made; every other value is checked as before, so the answer is the same for every input. Upstream (3.1.0, the newest release) allocates for every value.",
    replacements: [
      {
        from: "function isAnyValue(val) {\n\treturn isAnyValueInternal(val, /* @__PURE__ */ new WeakSet());\n}",
        to: "function isAnyValue(val) {\n\tconst type = typeof val;\n\tif (type === \"string\" || type === \"number\" || type === \"boolean\") return true;\n\treturn isAnyValueInternal(val, /* @__PURE__ */ new WeakSet());\n}",
      },
    ],
    append: `\n${ANY_VALUE_MARK}\n`,
  },
];

/** The comment that `append` starts with, which marks a file as patched. */
function markOf(patch: DependencyPatch): string {
  return patch.append.trimStart().split("\n", 1)[0]!;
}

export function isApplied(text: string, patch: DependencyPatch): boolean {
  return text.includes(markOf(patch));
}

/** Applies every patch under `nodeModules`; returns what it did, throws when a patch no longer fits. */
export function applyPatches(nodeModules: string): string[] {
  const done: string[] = [];
  for (const patch of PATCHES) {
    const root = path.join(nodeModules, patch.package);
    if (!fs.existsSync(root)) continue; // not installed here (e.g. a production subset)
    const version = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")).version;
    if (version !== patch.version) {
      throw new Error(`${patch.package} is ${version}, the patch is for ${patch.version}: check whether ${version} still needs it (${patch.why}), then update or drop it in scripts/patch-dependencies.ts`);
    }
    for (const file of patch.files) {
      const target = path.join(root, file);
      let text = fs.readFileSync(target, "utf8");
      if (isApplied(text, patch)) continue;
      for (const { from, to } of patch.replacements) {
        const count = text.split(from).length - 1;
        if (count !== 1) throw new Error(`${patch.package}/${file}: expected the text ${JSON.stringify(from)} once, found it ${count} times: upstream changed, review the patch`);
        text = text.replace(from, to);
      }
      fs.writeFileSync(target, text + patch.append);
      done.push(`${patch.package}/${file}`);
    }
  }
  return done;
}

export function unapplied(nodeModules: string): string[] {
  return PATCHES.flatMap((patch) =>
    patch.files
      .map((file) => path.join(nodeModules, patch.package, file))
      .filter((target) => fs.existsSync(target) && !isApplied(fs.readFileSync(target, "utf8"), patch)),
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes("--check");
  const nodeModules = path.resolve(process.argv.slice(2).find((arg) => !arg.startsWith("--")) ?? "node_modules");
  if (check) {
    const missing = unapplied(nodeModules);
    if (missing.length > 0) {
      console.error(`dependency patches not applied: ${missing.join(", ")} (run node scripts/patch-dependencies.ts)`);
      process.exit(1);
    }
  } else {
    for (const file of applyPatches(nodeModules)) console.log(`patched ${file}`);
  }
}

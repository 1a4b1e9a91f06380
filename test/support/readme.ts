import fs from "node:fs";
import path from "node:path";
import { DEFAULT_PORTS, ROOT } from "../../scripts/lib/system.ts";

export interface CodeBlock {
  language: string;
  code: string;
}

/** The fenced code blocks of one `## ` section of README.md, in order. */
export function readmeBlocks(section: string): CodeBlock[] {
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
  const start = readme.indexOf(`\n## ${section}\n`);
  if (start < 0) throw new Error(`README.md has no section "## ${section}"`);
  const next = readme.indexOf("\n## ", start + 1);
  const body = readme.slice(start, next < 0 ? undefined : next);
  return [...body.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((match) => ({ language: match[1]!, code: match[2]! }));
}

/**
 * The README names `make dev`'s fixed ports; a test runs the system elsewhere. Rewrites every
 * 127.0.0.1:<default port> to the port the same service has now.
 */
export function withPorts(code: string, portFor: (defaultPort: number) => number | undefined): string {
  const known = new Set(Object.values(DEFAULT_PORTS).flatMap(({ rpc, admin }) => [rpc, admin]));
  return code.replace(/127\.0\.0\.1:(\d+)/g, (whole, port: string) => {
    if (!known.has(Number(port))) return whole;
    const moved = portFor(Number(port));
    if (moved === undefined) throw new Error(`no running service for port ${port}`);
    return `127.0.0.1:${moved}`;
  });
}

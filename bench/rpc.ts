import type { Benchmark } from "./lib/context.ts";
export const rpc: Benchmark = { name: "rpc", title: "x", async run() { return { settings: {}, metrics: [], notes: [] }; } };

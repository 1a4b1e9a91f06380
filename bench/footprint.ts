import type { Benchmark } from "./lib/context.ts";
export const footprint: Benchmark = { name: "footprint", title: "x", async run() { return { settings: {}, metrics: [], notes: [] }; } };

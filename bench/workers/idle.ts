/** Does nothing, in TypeScript: loaded last by the footprint probes so the process stays up. */
const keepAlive: ReturnType<typeof setInterval> = setInterval(() => undefined, 60_000);
process.once("SIGTERM", () => clearInterval(keepAlive));

import { defineConfig } from "vite";

// The app is served by console/server.ts (make dev, the chart), which also proxies the services
// same-origin; `vite build` only bundles it into dist/.
export default defineConfig({
  root: import.meta.dirname,
  build: { outDir: "dist", emptyOutDir: true, target: "es2022" },
});

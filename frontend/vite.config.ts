import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// One build serves every environment: the API URL and the OIDC settings come from /config.json
// at runtime. Workspaces are split into chunks that load when a task needs them.
export default defineConfig({
  plugins: [react()],
  resolve: { alias: { "@": "/src" } },
  build: {
    outDir: "dist",
    sourcemap: true,
    target: "es2022",
    chunkSizeWarningLimit: 600,
  },
});

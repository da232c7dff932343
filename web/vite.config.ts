// The storefront and back office, built into web/dist: static files the gateway serves at /
// (nginx/routes.conf). `npm run dev` serves them with hot reload on :5173 and sends /api to a
// running `make dev` gateway.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true },
  server: { proxy: { "/api": "http://127.0.0.1:8080" } },
});

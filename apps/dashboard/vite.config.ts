import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The dashboard is a static bundle the coordinator serves from apps/dashboard/dist (apps/coordinator/src/http).
// Hashed file names under /assets/ are cached for good by the coordinator; index.html is revalidated.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    assetsDir: 'assets',
    chunkSizeWarningLimit: 600,
  },
  server: {
    // The page imports the API schemas from @allot/protocol/http, outside this root (one contract for both sides).
    fs: { allow: [fileURLToPath(new URL('../..', import.meta.url))] },
    // `pnpm --filter @allot/dashboard dev` against a coordinator started with http.port 8080.
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
});

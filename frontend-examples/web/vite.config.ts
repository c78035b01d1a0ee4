import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

// `vite` (dev, :5173) and `vite preview` (:4173) use the ports the router's CORS policy allows by
// default. The app calls the router and the WebSocket endpoint directly: VITE_GRAPHQL_URL and
// VITE_WS_URL at build time, or a config.json served next to index.html at run time (see README).
export default defineConfig({
  plugins: [react()],
  server: { host: '127.0.0.1', port: 5173, strictPort: true },
  preview: { host: '127.0.0.1', port: 4173, strictPort: true },
  build: {
    target: 'es2022',
    // GraphiQL (Monaco) is split off into the playground's own chunks and workers.
    chunkSizeWarningLimit: 4096,
    // .vite/manifest.json: lets the tests add up what the first page load fetches.
    manifest: true,
    rollupOptions: {
      onwarn(warning, warn) {
        // GraphiQL's "use no memo" directives: harmless, and noisy.
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return;
        warn(warning);
      },
    },
  },
  worker: { format: 'es' },
  // GraphiQL's Monaco workers are `?worker` imports inside node_modules, which the dev server's
  // dependency optimizer cannot bundle: serve that module as is (vite build is unaffected).
  optimizeDeps: { exclude: ['graphiql/setup-workers/vite', '@graphiql/react/setup-workers/vite'] },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});

// Builds the renderer into out/renderer. `base: './'` keeps asset URLs relative, so the same build
// loads from Electron's app:// protocol and from the browser host's HTTP server.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: './',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('../out/renderer', import.meta.url)),
    emptyOutDir: true,
    // noVNC uses top-level await (WebCodecs probe); es2022 is the first target that allows it.
    target: 'es2022',
    sourcemap: true,
    // One bundle is fine for a local app; keep the warning meaningful for real regressions.
    chunkSizeWarningLimit: 1200,
  },
  optimizeDeps: { esbuildOptions: { target: 'es2022' } },
  esbuild: { target: 'es2022' },
});

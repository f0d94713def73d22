/// <reference types="vitest/config" />
// Build of doppel's dashboard. The output in dist/ is embedded into the doppel binary by
// crates/doppel-server/build.rs; every text asset gets a precompressed `.gz` beside it so the
// server can answer `Accept-Encoding: gzip` without compressing at request time.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants, gzipSync } from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';

const COMPRESSIBLE = /\.(js|css|html|svg|json|txt|map)$/;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

/** Writes `file.gz` next to every compressible file of the bundle when it is smaller. */
function precompress(): Plugin {
  let outDir = 'dist';
  return {
    name: 'doppel-precompress',
    apply: 'build',
    configResolved(config) {
      outDir = config.build.outDir;
    },
    closeBundle() {
      for (const file of files(outDir)) {
        if (!COMPRESSIBLE.test(file)) continue;
        const raw = readFileSync(file);
        const gz = gzipSync(raw, { level: constants.Z_BEST_COMPRESSION });
        if (gz.length < raw.length) writeFileSync(`${file}.gz`, gz);
      }
    },
  };
}

export default defineConfig({
  base: '/',
  plugins: [precompress()],
  // `npm run dev`: the dashboard with hot reload against a running doppel (DOPPEL_URL,
  // default the address `doppel serve` and `doppel demo` listen on).
  server: {
    proxy: {
      '/api': { target: process.env.DOPPEL_URL ?? 'http://127.0.0.1:8080', ws: true },
    },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    assetsDir: 'assets',
    sourcemap: false,
  },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
    setupFiles: ['src/test-setup.ts'],
  },
});

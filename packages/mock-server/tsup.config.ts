import { defineConfig } from 'tsup';

export default defineConfig([
  {
    // The library and the vitest helper: ESM + CJS with types. `vitest` stays external (peer).
    entry: ['src/index.ts', 'src/vitest.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
  },
  {
    // The `sluice-mock-server` bin: ESM only (the package is "type": "module"), shebang kept.
    entry: ['src/cli.ts'],
    format: ['esm'],
    dts: false,
    sourcemap: true,
    clean: false,
    target: 'node20',
  },
]);

import type { Options } from 'tsup';

type Entries = Record<string, string>;

/**
 * A published library for Node 20+: ESM (`.js` with `.d.ts`) and CommonJS (`.cjs` with `.d.cts`), the pairs
 * that each package's `exports` points its `import` and `require` conditions at.
 *
 * `bins` are command-line entries: ESM only (a bin needs one format, and the packages are "type": "module"),
 * sharing the ESM library's chunks, without type declarations. One build, so one clean: two builds into the
 * same dist/ would race each other's clean.
 */
export function library(entry: Entries, options: Options = {}, bins: Entries = {}): Options {
  return {
    entry: { ...entry, ...bins },
    format: ['esm', 'cjs'],
    dts: { entry },
    sourcemap: true,
    clean: true,
    target: 'node20',
    esbuildOptions(esbuild, { format }) {
      if (format === 'cjs') esbuild.entryPoints = entry;
    },
    ...options,
  };
}

/** An application or a private tool: one ESM bundle of its entries (workspace packages bundled in). */
export function app(entry: Options['entry'], options: Options = {}): Options {
  return { entry, format: ['esm'], dts: false, sourcemap: true, clean: true, target: 'node20', ...options };
}

/**
 * One ESM file per entry, bundled from the workspace packages' sources (the `@sluice/source` condition):
 * the CLIs that child-process tests spawn, and the benchmarks. npm dependencies stay imports unless
 * `noExternal` pulls them in; those that are CommonJS (socks, denque) need `require`, which an ESM
 * bundle lacks, so the banner defines one.
 */
export function sourceBundle(entry: Entries, outDir: string, options: Options = {}): Options {
  return {
    entry,
    outDir,
    format: ['esm'],
    target: 'node20',
    platform: 'node',
    clean: true,
    dts: false,
    silent: true,
    noExternal: [/^@sluice\//],
    banner: { js: "import { createRequire as __sluiceRequire } from 'node:module'; const require = __sluiceRequire(import.meta.url);" },
    esbuildOptions(esbuild) {
      esbuild.conditions = ['@sluice/source'];
    },
    ...options,
  };
}

import type { Options } from 'tsup';

type Entries = Record<string, string>;

/**
 * A published library for Node 20+: ESM (`.js` with `.d.ts`) and CommonJS (`.cjs` with `.d.cts`), the pairs
 * that each package's `exports` points its `import` and `require` conditions at.
 *
 * `bins` are command-line entries: ESM only (a bin needs one format, and the packages are "type": "module"),
 * built with the ESM library so they share its chunks, and without type declarations.
 */
export function library(entry: Entries, options: Options = {}, bins: Entries = {}): Options[] {
  const common: Options = { sourcemap: true, target: 'node20', ...options };
  if (Object.keys(bins).length === 0) {
    return [{ ...common, entry, format: ['esm', 'cjs'], dts: true, clean: true }];
  }
  return [
    { ...common, entry: { ...entry, ...bins }, format: ['esm'], dts: { entry }, clean: true },
    // No clean here: it would race the ESM build writing into the same dist/.
    { ...common, entry, format: ['cjs'], dts: true, clean: false },
  ];
}

/** An application or a private tool: one ESM bundle of its entries (workspace packages bundled in). */
export function app(entry: Options['entry'], options: Options = {}): Options {
  return { entry, format: ['esm'], dts: false, sourcemap: true, clean: true, target: 'node20', ...options };
}

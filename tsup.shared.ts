import type { Options } from 'tsup';

/** A published library: ESM and CommonJS with type declarations, for Node 20+. */
export function library(entry: Options['entry'], options: Options = {}): Options {
  return { entry, format: ['esm', 'cjs'], dts: true, sourcemap: true, clean: true, target: 'node20', ...options };
}

/** An application or a private tool: one ESM bundle of its entries (workspace packages bundled in). */
export function app(entry: Options['entry'], options: Options = {}): Options {
  return { entry, format: ['esm'], dts: false, sourcemap: true, clean: true, target: 'node20', ...options };
}

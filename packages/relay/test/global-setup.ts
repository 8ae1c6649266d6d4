/** Bundles the CLI from the sources (workspace packages from their sources too) for the child-process tests. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'tsup';

export const CLI_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '.cache', 'test-cli');

export default async function setup(): Promise<void> {
  await build({
    entry: { cli: path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.ts') },
    outDir: CLI_DIR,
    format: ['esm'],
    target: 'node20',
    platform: 'node',
    clean: true,
    dts: false,
    silent: true,
    config: false,
    noExternal: [/^@sluice\//],
    // The workspace packages' own CommonJS dependencies (socks) are bundled too: give them require().
    banner: { js: "import { createRequire as __sluiceRequire } from 'node:module'; const require = __sluiceRequire(import.meta.url);" },
    esbuildOptions(options) {
      options.conditions = ['@sluice/source'];
    },
  });
}

/** Bundles the sluice-worker CLI from the sources (workspace packages too) for the child-process tests. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'tsup';

const here = path.dirname(fileURLToPath(import.meta.url));
export const CLI_DIR = path.join(here, '..', '.cache', 'test-cli');

export default async function setup(): Promise<void> {
  await build({
    entry: { cli: path.join(here, '..', 'src', 'cli.ts') },
    outDir: CLI_DIR,
    format: ['esm'],
    target: 'node20',
    platform: 'node',
    clean: true,
    dts: false,
    silent: true,
    config: false,
    noExternal: [/^@sluice\//],
    external: ['bullmq', 'ioredis', 'nodemailer'],
    // The workspace packages' own CommonJS dependencies (socks, denque) are bundled too: give them require().
    banner: { js: "import { createRequire as __sluiceRequire } from 'node:module'; const require = __sluiceRequire(import.meta.url);" },
    esbuildOptions(options) {
      options.conditions = ['@sluice/source'];
    },
  });
}

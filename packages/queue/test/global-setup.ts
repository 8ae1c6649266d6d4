/** Bundles the sluice-worker CLI from the sources (workspace packages too) for the child-process tests. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'tsup';
import { sourceBundle } from '../../../tsup.shared.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const CLI_DIR = path.join(here, '..', '.cache', 'test-cli');

export default async function setup(): Promise<void> {
  await build(sourceBundle({ cli: path.join(here, '..', 'src', 'cli.ts') }, CLI_DIR, { config: false, external: ['bullmq', 'ioredis', 'nodemailer'] }));
}

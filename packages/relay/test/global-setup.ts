/** Bundles the CLI from the sources (workspace packages from their sources too) for the child-process tests. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'tsup';
import { sourceBundle } from '../../../tsup.shared.js';

export const CLI_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '.cache', 'test-cli');

export default async function setup(): Promise<void> {
  await build(sourceBundle({ cli: path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.ts') }, CLI_DIR, { config: false }));
}

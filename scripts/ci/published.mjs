// Prints the directories (relative to the repository root) of the published packages: packages/* whose
// package.json is not private.
import { readFileSync, readdirSync } from 'node:fs';

const packages = new URL('../../packages/', import.meta.url);
for (const name of readdirSync(packages).sort()) {
  const manifest = JSON.parse(readFileSync(new URL(`${name}/package.json`, packages), 'utf8'));
  if (!manifest.private) console.log(`packages/${name}`);
}

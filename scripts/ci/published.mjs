// Prints the directories of the published packages (packages/* whose package.json is not private).
import { readFileSync, readdirSync } from 'node:fs';

for (const name of readdirSync('packages').sort()) {
  const manifest = JSON.parse(readFileSync(`packages/${name}/package.json`, 'utf8'));
  if (!manifest.private) console.log(`packages/${name}`);
}

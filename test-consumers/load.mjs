// Loads every packed entry with import(), as an ESM application does (scripts/ci/check-consumers.sh).
import { readFile } from 'node:fs/promises';

const specs = JSON.parse(await readFile(new URL('./specs.json', import.meta.url), 'utf8'));
for (const spec of specs) await import(spec);
console.log(`import(): ${specs.length} entries loaded`);

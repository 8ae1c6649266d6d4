// Loads every packed entry with require(), as a CommonJS application does (scripts/ci/check-consumers.sh).
const specs = require('./specs.json');

// vitest refuses require() itself (it loads test files as ESM, so its helper's .cjs only serves the .d.cts
// types of CommonJS projects): the helper must get as far as that refusal, and fail no other way.
const refusedByPeer = { '@sluice/mock-server/vitest': /^Vitest cannot be imported in a CommonJS module using require\(\)/ };

let loaded = 0;
for (const spec of specs) {
  try {
    require(spec);
    loaded++;
  } catch (error) {
    if (!refusedByPeer[spec]?.test(error.message)) throw error;
    console.log(`${spec}: vitest refused require(), as it does for every CommonJS caller`);
  }
}
console.log(`require(): ${loaded} of ${specs.length} entries loaded`);

import { defineConfig } from 'tsup';
import { app, library } from '../../tsup.shared.js';

export default defineConfig([
  // The library and the vitest helper: ESM + CJS with types. `vitest` stays external (peer).
  library(['src/index.ts', 'src/vitest.ts']),
  // The `sluice-mock-server` bin: ESM only (the package is "type": "module"), shebang kept.
  app(['src/cli.ts'], { clean: false }),
]);

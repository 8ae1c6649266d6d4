import { defineConfig } from 'tsup';
import { library } from '../../tsup.shared.js';

// The library and the vitest helper (`vitest` stays external: a peer), and the `sluice-mock-server` bin.
export default defineConfig(library({ index: 'src/index.ts', vitest: 'src/vitest.ts' }, {}, { cli: 'src/cli.ts' }));

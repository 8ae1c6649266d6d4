import { defineConfig } from 'tsup';
import { library } from '../../tsup.shared.js';

// The library's API, and the `sluice-relay` bin.
export default defineConfig(library({ index: 'src/index.ts' }, {}, { cli: 'src/cli.ts' }));

import { defineConfig } from 'tsup';
import { library } from '../../tsup.shared.js';

// The library's API and its testing helper, and the `sluice-worker` bin.
export default defineConfig(library({ index: 'src/index.ts', testing: 'src/testing.ts' }, {}, { cli: 'src/cli.ts' }));

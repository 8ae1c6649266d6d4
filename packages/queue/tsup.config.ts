import { defineConfig } from 'tsup';
import { library } from '../../tsup.shared.js';

// The CLI is an entry too, but only the library's API (and the testing helper) get type declarations.
export default defineConfig(
  library({ index: 'src/index.ts', testing: 'src/testing.ts', cli: 'src/cli.ts' }, { dts: { entry: { index: 'src/index.ts', testing: 'src/testing.ts' } } }),
);

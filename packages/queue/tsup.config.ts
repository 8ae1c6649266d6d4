import { defineConfig } from 'tsup';
import { library } from '../../tsup.shared.js';

// The CLI is an entry too, but only the library's API gets type declarations.
export default defineConfig(library({ index: 'src/index.ts', cli: 'src/cli.ts' }, { dts: { entry: { index: 'src/index.ts' } } }));

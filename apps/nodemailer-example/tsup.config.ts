import { defineConfig } from 'tsup';
import { app } from '../../tsup.shared.js';

// example-env is TypeScript source shared by the apps: bundled in.
export default defineConfig(app(['src/main.ts'], { noExternal: ['example-env'] }));

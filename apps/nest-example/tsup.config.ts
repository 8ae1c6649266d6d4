import { defineConfig } from 'tsup';
import { app } from '../../tsup.shared.js';

// One copy of terminus for the app and @sluice/nestjs/terminus (its classes are DI tokens).
// example-env is TypeScript source shared by the apps: bundled in.
export default defineConfig(app(['src/main.ts'], { external: ['@nestjs/terminus'], noExternal: ['example-env'] }));

import { defineConfig } from 'tsup';
import { app } from '../../tsup.shared.js';

// One copy of terminus for the app and @sluice/nestjs/terminus (its classes are DI tokens).
export default defineConfig(app(['src/main.ts'], { external: ['@nestjs/terminus'] }));

import { defineConfig } from 'tsup';
import { app } from '../../tsup.shared.js';

export default defineConfig(app(['src/main.ts']));

import { defineConfig } from 'tsup';
import { app } from '../../tsup.shared.js';

export default defineConfig(app(['src/demo.ts', 'src/bench.ts', 'src/server-process.ts', 'src/client-process.ts', 'src/soak.ts', 'src/delay-proxy.ts']));

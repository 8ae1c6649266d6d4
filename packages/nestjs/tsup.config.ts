import { defineConfig } from 'tsup';
import { library } from '../../tsup.shared.js';

export default defineConfig(
  library(
    { index: 'src/index.ts', terminus: 'src/terminus.ts', testing: 'src/testing.ts', handlebars: 'src/handlebars.ts' },
    // Shared code (MailerService, the DI token of the default pool) must be ONE class across the entry
    // points, in CommonJS too: without splitting each .cjs entry would carry its own copy.
    { splitting: true },
  ),
);

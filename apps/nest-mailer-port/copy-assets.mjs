// What nest-cli.json's "assets": ["mail/templates/**/*"] does for `nest build`: tsc compiles only
// TypeScript, so the templates are copied next to the compiled module that reads them.
import { cpSync } from 'node:fs';

cpSync(new URL('./src/mail/templates', import.meta.url), new URL('./dist/mail/templates', import.meta.url), { recursive: true });

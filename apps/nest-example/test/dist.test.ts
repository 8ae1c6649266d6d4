import { builtAppThroughPnpm } from 'example-env/scenarios';
import { it } from 'vitest';

it('built, started through pnpm: sends through a separate STARTTLS server with SMTP_TLS_CA, logs a failed send with its code, stops on SIGTERM to pnpm', async () => {
  await builtAppThroughPnpm('nest-example', 'SIGTERM: draining the mail pool, then exiting');
}, 300_000);

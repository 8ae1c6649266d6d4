import type { PoolStats, SendResult } from '@sluice/core';
import express from 'express';
import { describe, expectTypeOf, it } from 'vitest';
import { type Mailer, type SluiceMiddleware, sluice } from '../src/index.js';

// Compile-time checks: `pnpm typecheck` covers this file. Importing the package is enough for
// req.mailer and res.locals.mailer to be typed (declaration merging on Express.Request and Express.Locals).
describe('types', () => {
  it('types req.mailer and res.locals.mailer', () => {
    const app = express();
    const mailer = sluice({ host: 'localhost', port: 2525 });
    expectTypeOf(mailer).toEqualTypeOf<SluiceMiddleware>();
    app.use(mailer);
    app.get('/', async (req, res) => {
      expectTypeOf(req.mailer).toEqualTypeOf<Mailer>();
      expectTypeOf(res.locals.mailer).toEqualTypeOf<Mailer>();
      expectTypeOf(req.mailer.sendMail).returns.resolves.toEqualTypeOf<SendResult>();
      expectTypeOf(req.mailer.stats).toEqualTypeOf<PoolStats>();
      // @ts-expect-error: req.mailer is not `any`
      req.mailer.nope();
      // @ts-expect-error: close() and the route helpers stay on the middleware, not on requests
      req.mailer.close();
      const result = await req.mailer.sendMail({ from: 'a@example.com', to: 'b@example.com', text: 'x' });
      res.json({ id: result.messageId });
    });
    app.post('/mail', mailer.sendRoute({ from: 'a@example.com' }));
    app.get('/health', mailer.healthRoute({ cacheMs: 1000 }));
    expectTypeOf(mailer.close).returns.resolves.toBeVoid();
    const never = () => {
      // @ts-expect-error: options are PoolOptions or { pool }
      sluice({ pool: 'no' });
    };
    expectTypeOf(never).toBeFunction();
    return mailer.close();
  });
});

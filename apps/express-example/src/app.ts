import { isSluiceError } from '@sluice/core';
import { type SluiceMiddleware, sluiceErrorHandler } from '@sluice/express';
import express, { type Express, type Response } from 'express';

export interface AppOptions {
  /** `sluice(poolOptions)`: mounted with `app.use()`, so every route has `req.mailer`. */
  mailer: SluiceMiddleware;
  /** The sender of every mail the app sends. */
  from?: string;
  /** Largest `count` POST /bulk accepts. Default 10 000. */
  maxBulk?: number;
}

type Counts = { delivered: number; rejected: number; failed: number; unknown: number };

const EMAIL = /^[^\s@<>,;"]+@[^\s@<>,;"]+$/;
const CONTROL = /[\u0000-\u001f\u007f]/;

export function createApp({ mailer, from = 'Sluice Example <hello@example.com>', maxBulk = 10_000 }: AppOptions): Express {
  const app = express();
  app.use(express.json());
  app.use(mailer);

  /** POST /signup { email, name } → 202 { messageId } once the SMTP server has accepted the welcome mail. */
  app.post('/signup', async (req, res) => {
    const { email, name } = req.body ?? {};
    if (typeof email !== 'string' || email.length > 254 || !EMAIL.test(email)) return invalid(res, '"email" must be an address');
    if (typeof name !== 'string' || !name.trim() || name.length > 100 || CONTROL.test(name)) {
      return invalid(res, '"name" must be 1 to 100 characters');
    }
    // No try/catch: in Express 5 a rejected promise reaches the error handler below by itself.
    const result = await req.mailer.sendMail({
      from,
      to: { name, address: email },
      subject: `Welcome, ${name}!`,
      text: `Hello ${name},\n\nThanks for signing up. We are glad to have you.\n\n-- The Sluice Example team\n`,
      html: `<p>Hello ${escapeHtml(name)},</p><p>Thanks for signing up. We are glad to have you.</p><p>&mdash; The Sluice Example team</p>`,
    });
    res.status(202).json({ messageId: result.messageId });
  });

  /** POST /bulk { count? = 1000 } → 200 { count, delivered, rejected, failed, unknown, ms }: every message ends in one outcome. */
  app.post('/bulk', async (req, res) => {
    const count = req.body?.count ?? 1000;
    if (!Number.isInteger(count) || count < 1 || count > maxBulk) {
      return invalid(res, `"count" must be an integer from 1 to ${maxBulk}`);
    }
    const started = Date.now();
    const sends = Array.from({ length: count }, (_, i) =>
      req.mailer.sendMail({
        from,
        to: `reader${i + 1}@example.com`,
        subject: `Newsletter ${i + 1} of ${count}`,
        text: `Hello reader ${i + 1},\n\nThis is the newsletter.\n`,
      }),
    );
    const counts: Counts = { delivered: 0, rejected: 0, failed: 0, unknown: 0 };
    for (const result of await Promise.allSettled(sends)) {
      if (result.status === 'fulfilled') counts.delivered++;
      else counts[(isSluiceError(result.reason) && result.reason.outcome) || 'failed']++;
    }
    res.json({ count, ...counts, ms: Date.now() - started });
  });

  app.get('/health', mailer.healthRoute());

  // Every error in the shape of core's httpErrorFor ({ error: { code, kind, message, … } }), logged with its code.
  app.use(sluiceErrorHandler());

  return app;
}

/** 400 in the same shape as every other error of the app. */
function invalid(res: Response, message: string): void {
  res.status(400).json({ error: { code: 'EINVALID', kind: 'input', message } });
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

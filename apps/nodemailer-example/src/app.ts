import { httpErrorFor, isSluiceError, type Outcome } from '@sluice/core';
import express, { type ErrorRequestHandler, type Express } from 'express';
import type { Transporter } from 'nodemailer';

export interface AppOptions {
  /** `nodemailer.createTransport(sluiceTransport(...))`. */
  transporter: Transporter;
  /** Sender of every message. */
  from?: string;
  /** Recipient of the i-th message of POST /bulk. */
  bulkRecipient?: (i: number) => string;
  /** Largest `count` POST /bulk accepts. */
  maxBulk?: number;
}

export type OutcomeCounts = Record<Outcome, number>;

const EMAIL = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+\.[^\s@<>()[\]\\,;:"]+$/;
/** Sends in flight at once during POST /bulk (the pool queues what its connections cannot take yet). */
const BULK_WINDOW = 1000;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function createApp({
  transporter,
  from = 'Sluice Example <welcome@example.com>',
  bulkRecipient = (i) => `reader${i}@example.com`,
  maxBulk = 100_000,
}: AppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '16kb' }));

  app.post('/signup', async (req, res) => {
    const { email, name } = req.body ?? {};
    if (typeof email !== 'string' || !EMAIL.test(email)) throw new HttpError(400, 'email must be an email address');
    if (typeof name !== 'string' || name.trim() === '' || name.length > 100 || /[\r\n]/.test(name)) {
      throw new HttpError(400, 'name must be 1 to 100 characters on one line');
    }
    const info = await transporter.sendMail({
      from,
      to: { name: name.trim(), address: email },
      subject: `Welcome, ${name.trim()}!`,
      text: `Hi ${name.trim()},\n\nThanks for signing up. Your account is ready.\n\n— The Example team\n`,
      html: `<p>Hi ${escapeHtml(name.trim())},</p><p>Thanks for signing up. Your account is ready.</p><p>— The Example team</p>`,
    });
    res.status(202).json({ messageId: info.messageId, accepted: info.accepted });
  });

  app.post('/bulk', async (req, res) => {
    const count = req.body?.count ?? 1000;
    if (!Number.isInteger(count) || count < 1 || count > maxBulk) throw new HttpError(400, `count must be an integer from 1 to ${maxBulk}`);
    const started = Date.now();
    const counts: OutcomeCounts = { delivered: 0, rejected: 0, failed: 0, unknown: 0 };
    const inFlight = new Set<Promise<void>>();
    for (let i = 0; i < count; i++) {
      if (inFlight.size >= BULK_WINDOW) await Promise.race(inFlight);
      const send: Promise<void> = transporter
        .sendMail({ from, to: bulkRecipient(i), subject: `Bulk message ${i + 1} of ${count}`, text: `This is message ${i + 1}.\n` })
        .then(
          () => {
            counts.delivered++;
          },
          (err: unknown) => {
            counts[isSluiceError(err) && err.outcome ? err.outcome : 'failed']++;
          },
        )
        .finally(() => inFlight.delete(send));
      inFlight.add(send);
    }
    await Promise.all(inFlight);
    res.json({ ...counts, ms: Date.now() - started });
  });

  app.use(errorHandler);
  return app;
}

/**
 * Maps errors to HTTP answers in the shape every example app uses, `{ error: { code, kind, message, … } }`:
 * bad input 400 (EINVALID), and a SluiceError through core's httpErrorFor (refused 422, transient 503
 * with retry-after, unknown 502, the app's own setup 500). Anything else is a 500 that shows nothing of it.
 */
const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
  const invalid = err instanceof HttpError || err?.type === 'entity.parse.failed' || err?.type === 'entity.too.large';
  if (invalid) return void res.status(err.status ?? 400).json({ error: { code: 'EINVALID', kind: 'input', message: err.message } });
  const { status, headers, body } = httpErrorFor(err);
  if (!isSluiceError(err)) console.error(`${req.method} ${req.path} -> ${status}`, err);
  res.status(status).set(headers).json(body);
};

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

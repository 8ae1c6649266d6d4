import {
  type HttpErrorAnswer,
  type MailOptions,
  type MailQueueLike,
  type Message,
  type Pool,
  type PoolOptions,
  type PoolStats,
  type RecipientResult,
  type SendOptions,
  type SendResult,
  ErrorCodes,
  SluiceError,
  type VerifyResult,
  createPool,
  httpErrorFor,
  isSluiceError,
} from '@sluice/core';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';

/** What `app.use(mailer)` puts on `req.mailer` and `res.locals.mailer`: the pool's sending API. */
export interface Mailer {
  /** `pool.send()`: an envelope and a complete RFC 5322 body. */
  send(message: Message, options?: SendOptions): Promise<SendResult>;
  /** `pool.sendMail()`: nodemailer message options, composed by nodemailer's MailComposer. */
  sendMail(mail: MailOptions, options?: SendOptions): Promise<SendResult>;
  /** Connects, runs EHLO, STARTTLS and AUTH, QUITs. */
  verify(): Promise<VerifyResult>;
  /**
   * Puts the message on the durable queue given as `sluice({ …, queue })` (a `MailQueue` of
   * `@sluice/queue`) instead of sending it: composed now, sent by a worker. Resolves with the job.
   * Without a queue: rejects with EOPTIONS.
   */
  enqueue(mail: MailOptions, options?: Record<string, unknown>): Promise<{ id?: string | undefined }>;
  /** A snapshot of the pool's connections, queue and outcome counts. */
  readonly stats: PoolStats;
  readonly pool: Pool;
}

/** What `enqueue()` needs of a queue (`@sluice/queue`'s MailQueue has it): core's type, re-exported. */
export type { MailQueueLike } from '@sluice/core';

/** The middleware returned by `sluice()`: `app.use(mailer)`, and the same API outside requests. */
export interface SluiceMiddleware extends Mailer {
  (req: Request, res: Response, next: NextFunction): void;
  /** A POST handler that sends `{ from, to, cc, bcc, replyTo, subject, text, html }` from a JSON body. */
  sendRoute(options?: SendRouteOptions): RequestHandler;
  /** A GET handler answering 200 `{ status: 'up' }` or 503 `{ status: 'down', error }` from a cached `verify()`. */
  healthRoute(options?: HealthRouteOptions): RequestHandler;
  /** Drains and closes the pool if `sluice()` created it; a pool passed in is left to its owner. */
  close(): Promise<void>;
}

declare global {
  namespace Express {
    interface Request {
      /** Set by `app.use(sluice(...))` from `@sluice/express`. */
      mailer: Mailer;
    }
    interface Locals {
      /** Set by `app.use(sluice(...))` from `@sluice/express`. */
      mailer: Mailer;
    }
  }
}

/** The JSON body `sendRoute()` accepts (after validation). Addresses are strings: `a@example.com` or `Name <a@example.com>`. */
export interface SendRouteInput {
  from: string;
  to: string | string[];
  cc?: string | string[];
  bcc?: string | string[];
  replyTo?: string | string[];
  subject?: string;
  text?: string;
  html?: string;
}

export interface SendRouteOptions {
  /** The sender of every message. When set, a `from` in the request is refused (400). */
  from?: string;
  /** Most recipients (to + cc + bcc) per request. Default 50. */
  maxRecipients?: number;
  /** Seconds in the Retry-After header of a 503 (core's `httpErrorFor` says 30, or 1 for a full queue). */
  retryAfter?: number;
  /** Body size limit when the route parses JSON itself (no `express.json()` mounted before it). Default '1mb'. */
  limit?: string | number;
  /** Turns the validated input into message options (add a footer, check `req.user`…). Throw to refuse: the error goes to `next()`. */
  transform?: (input: SendRouteInput, req: Request) => MailOptions | Promise<MailOptions>;
}

export interface HealthRouteOptions {
  /** How long a result is reused, in ms, so that probes do not open a connection each. Default 10 000. */
  cacheMs?: number;
  /** Report down after this many ms without an answer. Default 5000. */
  timeoutMs?: number;
}

const FIELDS = new Set(['from', 'to', 'cc', 'bcc', 'replyTo', 'subject', 'text', 'html']);

/** A request body the route refuses: 400, in the shape of core's `httpErrorFor` answers. */
function invalid(status: number, message: string): HttpErrorAnswer {
  return { status, headers: {}, body: { error: { code: 'EINVALID', kind: 'input', message, outcome: 'rejected' } } };
}

/**
 * `const mailer = sluice(poolOptions)` or `sluice({ pool })`; then `app.use(mailer)`. Add `queue`
 * (a MailQueue) for `req.mailer.enqueue()`; its owner closes it.
 */
export function sluice(input: (PoolOptions | { pool: Pool }) & { queue?: MailQueueLike }): SluiceMiddleware {
  const { queue, ...options } = input;
  if (queue !== undefined && typeof queue?.addMail !== 'function') {
    throw new SluiceError(ErrorCodes.EOPTIONS, 'sluice({ queue }) needs a MailQueue from @sluice/queue', { permanent: true });
  }
  const given = 'pool' in options ? options.pool : undefined;
  if ('pool' in options && typeof given?.send !== 'function') {
    throw new SluiceError(ErrorCodes.EOPTIONS, 'sluice({ pool }) needs a pool from createPool()', { permanent: true });
  }
  const pool = given ?? createPool(options as PoolOptions);
  const api: Mailer = Object.freeze({
    send: (message: Message, opts?: SendOptions) => pool.send(message, opts),
    sendMail: (mail: MailOptions, opts?: SendOptions) => pool.sendMail(mail, opts),
    verify: () => pool.verify(),
    enqueue: (mail: MailOptions, opts?: Record<string, unknown>) =>
      queue ? queue.addMail(mail, opts) : Promise.reject(new SluiceError(ErrorCodes.EOPTIONS, 'enqueue() needs sluice({ …, queue })', { permanent: true })),
    get stats() {
      return pool.stats;
    },
    pool,
  });

  const middleware = ((req: Request, res: Response, next: NextFunction) => {
    req.mailer = api;
    res.locals.mailer = api;
    next();
  }) as SluiceMiddleware;
  Object.defineProperties(middleware, Object.getOwnPropertyDescriptors(api));

  middleware.close = () => (given ? Promise.resolve() : pool.close());

  middleware.sendRoute = ({ from, maxRecipients = 50, retryAfter, limit = '1mb', transform } = {}) => {
    const parse = express.json({ limit });
    const reply = (res: Response, answer: HttpErrorAnswer) => res.status(answer.status).set(answer.headers).json(answer.body);
    const handle = async (req: Request, res: Response) => {
      const input = validate(req.body, from, maxRecipients);
      if (typeof input === 'string') return void reply(res, invalid(400, input));
      const mail = transform ? await transform(input, req) : input;
      // A client that hangs up before its message reached the wire will retry: do not send it twice.
      const abort = new AbortController();
      res.once('close', () => res.writableFinished || abort.abort());
      try {
        const result = await pool.sendMail(mail, { signal: abort.signal });
        const { messageId, accepted, rejected, pending, response } = result;
        res.status(202).json({ outcome: 'delivered', messageId, accepted: accepted.map((r: RecipientResult) => r.address), rejected, pending, response });
      } catch (err) {
        if (!isSluiceError(err)) throw err;
        // One table for every front-end: core's httpErrorFor (input 400, refused 422, transient 503,
        // unknown 502, config 500 with a generic message).
        const answer = httpErrorFor(err);
        if (retryAfter !== undefined && answer.headers['retry-after']) answer.headers['retry-after'] = String(retryAfter);
        reply(res, answer);
      }
    };
    return (req, res, next) => {
      if (req.body !== undefined) return void handle(req, res).catch(next);
      parse(req, res, (err?: { status?: number }) => {
        const status = err ? (err.status === 413 ? 413 : 400) : 0;
        if (status) return void reply(res, invalid(status, status === 413 ? 'The body is too large' : 'The body is not valid JSON'));
        handle(req, res).catch(next);
      });
    };
  };

  middleware.healthRoute = ({ cacheMs = 10_000, timeoutMs = 5_000 } = {}) => {
    let last: { at: number; status: number; body: Record<string, unknown> } | null = null;
    // Probes that arrive while a check runs share it instead of opening more connections. A check that
    // outlives its timeout is answered 'down', its connection cut by verify() itself (ETIMEDOUT).
    let running: Promise<void> | null = null;
    const check = async () => {
      try {
        const v = await pool.verify({ timeout: timeoutMs });
        last = { at: Date.now(), status: 200, body: { status: 'up', encrypted: v.encrypted, authenticated: v.authenticated } };
      } catch (err) {
        const code = (err as { code?: unknown })?.code;
        last = { at: Date.now(), status: 503, body: { status: 'down', error: typeof code === 'string' ? code : 'ERROR' } };
      } finally {
        running = null;
      }
    };
    return async (_req, res) => {
      if (!last || Date.now() - last.at >= cacheMs) await (running ??= check());
      const { at, status, body } = last!;
      res
        .status(status)
        .set('Cache-Control', 'no-store')
        .json({ ...body, checkedAt: new Date(at).toISOString(), stats: pool.stats });
    };
  };

  return middleware;
}

/** Checks a request body for sendRoute(); returns the input or what is wrong with it. */
function validate(body: unknown, from: string | undefined, maxRecipients: number): SendRouteInput | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'Expected a JSON object (Content-Type: application/json)';
  const input = body as Record<string, unknown>;
  const unknown = Object.keys(input).filter((key) => !FIELDS.has(key));
  if (unknown.length > 0) return `Unknown field(s): ${unknown.join(', ')}`;
  if (from !== undefined && input.from !== undefined) return '"from" is set by the server';
  for (const key of ['from', 'subject', 'text', 'html']) if (input[key] !== undefined && typeof input[key] !== 'string') return `"${key}" must be a string`;
  let recipients = 0;
  for (const key of ['to', 'cc', 'bcc', 'replyTo']) {
    const value = input[key];
    if (value === undefined) continue;
    const list = Array.isArray(value) ? value : [value];
    if (!list.every((a) => typeof a === 'string' && a.trim() !== '')) return `"${key}" must be an address or a list of addresses`;
    // Count every "@": a string may hold several comma-separated addresses. Overcounting is the safe side.
    if (key !== 'replyTo') for (const a of list as string[]) recipients += Math.max(1, a.split('@').length - 1);
  }
  if (input.to === undefined || (Array.isArray(input.to) && input.to.length === 0)) return '"to" is required';
  if (recipients > maxRecipients) return `At most ${maxRecipients} recipients per message`;
  if (!(from ?? input.from)) return '"from" is required';
  if (input.text === undefined && input.html === undefined) return '"text" or "html" is required';
  return { ...input, from: from ?? input.from } as SendRouteInput;
}

export { sluiceErrorHandler } from './error-handler.js';
export type { ErrorLogEntry, SluiceErrorHandlerOptions } from './error-handler.js';

import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import {
  createPool,
  type DsnOptions,
  ErrorCodes,
  isSluiceError,
  type Message,
  type Pool,
  type PoolOptions,
  type RecipientResult,
  type SendResult,
  SluiceError,
  SmtpReplyError,
} from '@sluice/core';
import type { MailMessage, NodemailerError, SentMessageInfo, SMTPEnvelopeDsn, Transport } from 'nodemailer';
import DKIM from 'nodemailer/lib/dkim';
import pkg from '../package.json' with { type: 'json' };
import { fromNodemailer, isNodemailerOptions, type NodemailerSmtpOptions } from './options.js';

export type { NodemailerSmtpOptions } from './options.js';
export type { NodemailerOAuth2 } from './oauth2.js';

export interface SluiceTransportExtras {
  /**
   * Messages up to this many bytes are rendered (DKIM and stream plugins included) into memory before
   * they are queued: they get SIZE, BDAT pipelining, retries and recipient splits. A larger message
   * streams from nodemailer as the connection writes it. Default 1 MiB.
   */
  maxBufferSize?: number;
}

/**
 * `PoolOptions` (the transport creates and owns a pool), nodemailer's own SMTP options or a connection
 * URL (translated: `service`, `url`, `maxMessages`, `rateDelta`, OAuth2, `dkim`, …), or `{ pool }` (an
 * existing pool, never closed here).
 */
export type SluiceTransportOptions = (PoolOptions | NodemailerSmtpOptions | { pool: Pool }) & SluiceTransportExtras;

/** The info nodemailer's `sendMail` resolves with, shaped like its SMTP pool's. */
export interface SluiceSentMessageInfo extends SentMessageInfo {
  envelope: { from: string | false; to: string[] };
  messageId: string;
  accepted: string[];
  rejected: string[];
  /** One error per rejected recipient: code 'EENVELOPE', responseCode, response, command, recipient. */
  rejectedErrors?: SluiceError[];
  /** Recipients refused with a 4xx reply (not retried). */
  pending: string[];
  /** The reply to the end of the content, e.g. `250 2.0.0 Ok: queued as 1A2B`. */
  response: string;
}

export type SluiceSendCallback = (err: NodemailerError | null, info?: SluiceSentMessageInfo) => void;

const DEFAULT_MAX_BUFFER = 1024 * 1024;

/** A nodemailer transport backed by a sluice pool. Create it with {@link sluiceTransport}. */
export class SluiceTransport extends EventEmitter implements Transport<SluiceSentMessageInfo> {
  readonly name = 'sluice';
  readonly version: string = pkg.version;
  /** nodemailer hands `mail.data.signal` to us: a queued message is dropped when it aborts. */
  readonly supportsAbortSignal = true;
  /** The pool behind the transport (shared or owned). */
  readonly pool: Pool;
  readonly ownsPool: boolean;
  private readonly maxBufferSize: number;
  /** The rendered streams of messages not settled yet: `close({ force: true })` destroys them. */
  private readonly streams = new Set<Readable>();
  /** Transport-wide DKIM signing (nodemailer's `dkim` transport option); a message's own `dkim` wins. */
  private readonly dkim: DKIM | null;
  /** Messages whose callback has not run yet. */
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;
  private closing: Promise<void> | null = null;
  private readonly onPoolIdle = () => {
    if (this.isIdle()) this.emit('idle');
  };
  private readonly onPoolClose = () => {
    const s = this.pool.stats;
    if (s.connections === 0 && s.queued === 0 && s.inFlight === 0) this.emit('clear');
  };

  constructor(options: SluiceTransportOptions | string) {
    super();
    const given = typeof options === 'string' ? { url: options } : (options ?? {});
    const { maxBufferSize = DEFAULT_MAX_BUFFER, ...rest } = given as SluiceTransportExtras & Record<string, unknown>;
    if (!(typeof maxBufferSize === 'number' && maxBufferSize >= 0)) {
      throw new SluiceError(ErrorCodes.EOPTIONS, 'maxBufferSize must be a non-negative number', { permanent: true });
    }
    this.maxBufferSize = maxBufferSize;
    if (typeof rest.pool === 'object' && rest.pool !== null) {
      if (Object.keys(rest).length > 1) {
        throw new SluiceError(ErrorCodes.EOPTIONS, 'Pass either pool options or { pool }, not both', { permanent: true });
      }
      this.pool = rest.pool as Pool;
      this.ownsPool = false;
      this.dkim = null;
    } else {
      const translated = isNodemailerOptions(rest) ? fromNodemailer(rest as NodemailerSmtpOptions) : { pool: rest as PoolOptions, dkim: undefined };
      // Before the pool: a bad key is refused before any connection could open.
      this.dkim = translated.dkim ? new DKIM(translated.dkim) : null;
      this.pool = createPool(translated.pool);
      this.ownsPool = true;
    }
    this.pool.on('drain', this.onPoolIdle);
    this.pool.on('idle', this.onPoolIdle);
    this.pool.on('close', this.onPoolClose);
    // Like nodemailer's pool: announce that messages can be sent once listeners are attached.
    setImmediate(this.onPoolIdle).unref();
  }

  /** Called by nodemailer's `sendMail` once the message is compiled and its plugins have run. */
  send(mail: MailMessage<SluiceSentMessageInfo>, callback: SluiceSendCallback): void {
    // Never call back synchronously, and never from inside a promise chain (a throwing callback must not be swallowed).
    const done: SluiceSendCallback = (err, info) => process.nextTick(callback, err, info);
    if (this.closed) return done(asError(closedError()));
    const signal = mail.data.signal ?? undefined;
    let envelope: SluiceSentMessageInfo['envelope'];
    let messageId: string;
    let stream: Readable;
    let dsn: DsnOptions | undefined;
    try {
      const env = mail.message.getEnvelope();
      envelope = { from: env.from, to: env.to };
      messageId = mail.message.messageId();
      dsn = toDsn(mail.data.dsn, env.to);
      stream = mail.message.createReadStream();
      // nodemailer signs a message that has its own `dkim` itself (a stream plugin of its Mail).
      if (this.dkim && !mail.data.dkim) stream = this.dkim.sign(stream);
    } catch (err) {
      return done(asError(err));
    }
    // The pool reads a message of up to maxBufferSize bytes into memory before queueing it (bufferUpTo):
    // it then gets SIZE, BDAT pipelining, retries and recipient splits; a larger one streams. The pool
    // counts it from now, so a close() called while it renders waits for it.
    const message: Message = { envelope: { from: envelope.from || '', to: envelope.to, dsn }, body: stream, messageId };
    this.streams.add(stream);
    const settled = this.pool
      .send(message, { signal, bufferUpTo: this.maxBufferSize })
      .then(
        (result) => done(null, toInfo(result, envelope, messageId)),
        (err) => {
          stream.destroy();
          done(asError(err));
        },
      )
      .finally(() => {
        this.streams.delete(stream);
        this.inFlight.delete(settled);
      });
    this.inFlight.add(settled);
  }

  /** Connects, runs EHLO, STARTTLS and AUTH, and QUITs. Promise form without a callback. */
  verify(): Promise<true>;
  verify(callback: (err: NodemailerError | null, success?: true) => void): void;
  verify(callback?: (err: NodemailerError | null, success?: true) => void): Promise<true> | undefined {
    const verified = this.pool.verify().then(() => true as const);
    if (!callback) return verified;
    verified.then(
      (ok) => process.nextTick(callback, null, ok),
      (err) => process.nextTick(callback, asError(err)),
    );
    return undefined;
  }

  /** True while the pool's queue (messages still rendering included) is below its highWaterMark. */
  isIdle(): boolean {
    return !this.closed && this.pool.stats.queued < this.pool.options.highWaterMark;
  }

  /**
   * Stops taking messages and resolves once every message this transport accepted has its outcome.
   * An owned pool is then closed (QUIT); a shared pool stays open. `{ force: true }` destroys an owned
   * pool at once (queued messages fail with ECLOSED).
   */
  close(options?: { force?: boolean }): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      if (this.ownsPool && options?.force) {
        for (const stream of this.streams) stream.destroy(closedError());
        await this.pool.destroy();
      }
      if (this.ownsPool) await this.pool.close();
      while (this.inFlight.size > 0) await Promise.all(this.inFlight);
      this.pool.off('drain', this.onPoolIdle);
      this.pool.off('idle', this.onPoolIdle);
      this.pool.off('close', this.onPoolClose);
    })();
    return this.closing;
  }
}

/** `nodemailer.createTransport(sluiceTransport({ host, port, auth }))` or `sluiceTransport({ pool })`. */
export function sluiceTransport(options: SluiceTransportOptions | string): SluiceTransport {
  return new SluiceTransport(options);
}

/** nodemailer's DSN shape ({ ret|return, envid|id, notify, recipient|orcpt }) as the core's; invalid values are refused by the core. */
export function toDsn(dsn: SMTPEnvelopeDsn | undefined | null, to: string[]): DsnOptions | undefined {
  if (!dsn) return undefined;
  const out: DsnOptions = {};
  const ret = String(dsn.ret ?? dsn.return ?? '').toUpperCase();
  if (ret) out.ret = (ret === 'HEADERS' ? 'HDRS' : ret === 'BODY' ? 'FULL' : ret) as DsnOptions['ret'];
  const envid = String(dsn.envid ?? dsn.id ?? '');
  if (envid) out.envid = envid;
  if (dsn.notify) {
    const list = (typeof dsn.notify === 'string' ? dsn.notify.split(',') : dsn.notify).map((n) => String(n).trim().toUpperCase());
    out.notify = (list.length === 1 && list[0] === 'NEVER' ? 'NEVER' : list) as DsnOptions['notify'];
  }
  // nodemailer sends the one ORCPT with every RCPT; the core takes "rfc822;" off and puts it back.
  const orcpt = String(dsn.recipient ?? dsn.orcpt ?? '').replace(/^rfc822;/i, '');
  if (orcpt) out.orcpt = Object.fromEntries(to.map((address) => [address, orcpt]));
  return out;
}

function toInfo(result: SendResult, envelope: SluiceSentMessageInfo['envelope'], messageId: string): SluiceSentMessageInfo {
  const info: SluiceSentMessageInfo = {
    envelope,
    messageId,
    accepted: result.accepted.map((r) => r.address),
    rejected: result.rejected.map((r) => r.address),
    pending: result.pending.map((r) => r.address),
    response: result.response,
  };
  if (result.rejected.length > 0) info.rejectedErrors = result.rejected.map(recipientError);
  return info;
}

function recipientError(r: RecipientResult): SluiceError {
  const reply = { code: r.code, enhanced: r.enhancedCode, lines: r.response.split('\n'), text: r.response };
  return Object.assign(new SmtpReplyError(ErrorCodes.EENVELOPE, 'RCPT', reply, `Recipient command failed: ${r.response}`), { recipient: r.address });
}

/** The core's error as is; an error that ends a send with refused recipients also gets nodemailer's `rejectedErrors`. */
function asError(err: unknown): NodemailerError {
  if (isSluiceError(err) && err.rejected?.length) Object.assign(err, { rejectedErrors: err.rejected.map(recipientError) });
  return err as NodemailerError;
}

function closedError(): SluiceError {
  return new SluiceError(ErrorCodes.ECLOSED, 'The transport is closed', { outcome: 'failed' });
}

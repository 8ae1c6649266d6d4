import MailComposer from 'nodemailer/lib/mail-composer';
import Mail from 'nodemailer/lib/mailer';
import { ErrorCodes, SluiceError } from './errors.js';
import type { MailerOptions, MailOptions } from './mail-options.js';
import type { Message } from './message.js';

export type { MailOptions } from './mail-options.js';

/**
 * The envelope `sendMail(mail)` sends with: `mail.envelope` when given, else from/to/cc/bcc, parsed by
 * nodemailer's address parser (`"Doe, John" <john@example.com>` is one address, not two).
 */
export function mailEnvelope(mail: MailOptions): { from: string; to: string[] } {
  const { dsn: _dsn, dkim: _dkim, attachDataUrls: _attach, ...rest } = mail;
  const envelope = new MailComposer(rest).compile().getEnvelope();
  return { from: envelope.from || '', to: envelope.to };
}

/** Turns `sendMail()`'s message options into exact bytes. Rejects with EMESSAGE. */
export type Compose = (mail: MailOptions) => Promise<Message>;

/**
 * The bytes an SMTP transport of nodemailer's would send: the built message (DKIM applied by the
 * Mail's stream plugin) and its envelope. Not nodemailer's stream transport: that one keeps the Bcc
 * header (it shows the whole message), and Bcc must never reach the wire (RFC 5322 §3.6.3).
 */
const BUILD = {
  name: 'sluice-compose',
  version: '1',
  send(mail: { message: { getEnvelope(): unknown; messageId(): string; build(cb: (err: Error | null, buf: Buffer) => void): void } }, callback: (err: Error | null, info?: unknown) => void): void {
    const envelope = mail.message.getEnvelope();
    const messageId = mail.message.messageId();
    mail.message.build((err, message) => (err ? callback(err) : callback(null, { envelope, messageId, message })));
  },
};

/**
 * Composes through nodemailer's own pipeline, MIME never written by hand: its Mail object, so
 * `defaults`, `dkim` (transport-wide and per mail) and `attachDataUrls` mean exactly what they mean
 * in nodemailer, and the bytes are the ones nodemailer would have sent.
 */
export function createComposer(options: MailerOptions): Compose {
  // DSN parameters are sluice's (RFC 3461, checked by the core), not nodemailer's: kept out of its defaults.
  const { dsn: defaultDsn, ...defaults } = options.defaults ?? {};
  const mailer = new Mail(BUILD as never, { dkim: options.dkim, attachDataUrls: options.attachDataUrls }, defaults);
  return async (mail) => {
    try {
      const { dsn = defaultDsn, ...rest } = mail;
      const info = await mailer.sendMail(rest);
      const envelope = info.envelope as { from?: string | false; to?: string[] };
      return { envelope: { from: envelope.from || '', to: envelope.to ?? [], dsn }, body: info.message as Buffer, messageId: info.messageId };
    } catch (cause) {
      throw new SluiceError(ErrorCodes.EMESSAGE, `The message could not be composed: ${(cause as Error)?.message ?? cause}`, {
        cause,
        permanent: true,
        outcome: 'rejected',
      });
    }
  };
}

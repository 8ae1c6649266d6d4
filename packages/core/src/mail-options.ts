import type MailComposer from 'nodemailer/lib/mail-composer';
import type { DKIMOptions } from 'nodemailer/lib/dkim';
import { ErrorCodes, SluiceError } from './errors.js';
import type { DsnOptions } from './protocol/commands.js';

export type { DKIMOptions } from 'nodemailer/lib/dkim';

/**
 * nodemailer's message options (from, to, subject, text, html, attachments, …) as `sendMail()` takes
 * them, plus a per-mail `dkim` and `attachDataUrls` as in nodemailer's own `sendMail()`.
 */
export type MailOptions = ConstructorParameters<typeof MailComposer>[0] & { dsn?: DsnOptions; dkim?: DKIMOptions; attachDataUrls?: boolean };

/** What every `sendMail()` of a pool is composed with: nodemailer's `defaults`, transport `dkim` and `attachDataUrls`. */
export interface MailerOptions {
  defaults: MailOptions | undefined;
  dkim: DKIMOptions | undefined;
  attachDataUrls: boolean;
}

export function checkMailerOptions(o: { defaults?: unknown; dkim?: unknown; attachDataUrls?: unknown }): MailerOptions {
  const bad = (message: string) => new SluiceError(ErrorCodes.EOPTIONS, message, { permanent: true });
  const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (o.defaults !== undefined && !isObject(o.defaults)) throw bad('defaults must be an object of message options (from, replyTo, headers, …)');
  if (o.dkim !== undefined) {
    const d = o.dkim as Record<string, unknown>;
    if (!isObject(d) || !(d.keys || (typeof d.domainName === 'string' && typeof d.keySelector === 'string' && d.privateKey))) {
      throw bad('dkim must be nodemailer DKIM options: { domainName, keySelector, privateKey } or { keys: [...] }');
    }
  }
  if (o.attachDataUrls !== undefined && typeof o.attachDataUrls !== 'boolean') throw bad('attachDataUrls must be true or false');
  return { defaults: o.defaults as MailOptions | undefined, dkim: o.dkim as DKIMOptions | undefined, attachDataUrls: o.attachDataUrls === true };
}

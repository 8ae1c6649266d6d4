import MailComposer from 'nodemailer/lib/mail-composer';
import { ErrorCodes, SluiceError } from './errors.js';
import type { Message } from './message.js';
import type { DsnOptions } from './protocol/commands.js';

/** nodemailer's message options (from, to, subject, text, html, attachments, …), composed by nodemailer's MailComposer. */
export type MailOptions = ConstructorParameters<typeof MailComposer>[0] & { dsn?: DsnOptions };

/**
 * The envelope `sendMail(mail)` sends with: `mail.envelope` when given, else from/to/cc/bcc, parsed by
 * nodemailer's address parser (`"Doe, John" <john@example.com>` is one address, not two).
 */
export function mailEnvelope(mail: MailOptions): { from: string; to: string[] } {
  const { dsn: _dsn, ...rest } = mail;
  const envelope = new MailComposer(rest).compile().getEnvelope();
  return { from: envelope.from || '', to: envelope.to };
}

/** Composes a message with nodemailer's MailComposer: MIME is not written by hand. Rejects with EMESSAGE. */
export async function compose(mail: MailOptions): Promise<Message> {
  try {
    const { dsn, ...rest } = mail;
    const node = new MailComposer(rest).compile();
    const envelope = node.getEnvelope();
    const body = await node.build();
    return { envelope: { from: envelope.from || '', to: envelope.to, dsn }, body, messageId: node.messageId() };
  } catch (cause) {
    throw new SluiceError(ErrorCodes.EMESSAGE, `The message could not be composed: ${(cause as Error)?.message ?? cause}`, {
      cause,
      permanent: true,
      outcome: 'rejected',
    });
  }
}

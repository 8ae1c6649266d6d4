/**
 * Delivery status notifications (RFC 3464): bounces for messages that failed permanently
 * (`Action: failed`), and delay warnings for messages still being retried (`Action: delayed`, a
 * 4.x.x status and `Will-Retry-Until`, RFC 3464 §2.3.3 and §2.3.9).
 */
import { randomBytes } from 'node:crypto';

export interface Failure {
  address: string;
  /** RFC 3463 status, e.g. '5.1.1'. */
  status: string;
  /** The upstream reply (or our reason), for Diagnostic-Code. */
  diagnostic: string;
  /** 'smtp' when the diagnostic is an SMTP reply from the upstream. */
  diagnosticType?: 'smtp' | 'x-sluice';
  orcpt?: string;
  /** The upstream that answered, when it was not `BounceInput.remoteMta` (a message split across upstreams). */
  remoteMta?: string;
}

export interface BounceInput {
  /** The name of this relay (Reporting-MTA). */
  reportingMta: string;
  /** The upstream host (Remote-MTA), when it answered. */
  remoteMta?: string;
  originalFrom: string;
  originalId: string;
  envid?: string;
  arrivalDate: Date;
  failures: Failure[];
  /** The original message (its header section is included). */
  original: Buffer;
  /** Include the whole original message (RET=FULL) rather than its headers. Default: headers. */
  full?: boolean;
  now?: Date;
  /** 'failed' (a bounce, the default) or 'delayed' (a delay warning: the message is still queued). */
  action?: 'failed' | 'delayed';
  /** For 'delayed': when the relay gives up (arrival + maximum queue lifetime). */
  willRetryUntil?: Date;
}

/** The header section of a message: up to the first empty line. */
export function headerSection(message: Buffer): Buffer {
  let end = message.indexOf('\r\n\r\n');
  if (end !== -1) return message.subarray(0, end + 2);
  end = message.indexOf('\n\n');
  if (end !== -1) return message.subarray(0, end + 1);
  return message;
}

/** A status from an SMTP reply code and its enhanced code, or a default. */
export function statusOf(code: number | undefined, enhanced: string | null | undefined, fallback = '5.0.0'): string {
  if (enhanced && /^[245]\.\d{1,3}\.\d{1,3}$/.test(enhanced)) return enhanced;
  if (code && code >= 500) return '5.0.0';
  if (code && code >= 400) return '4.0.0';
  return fallback;
}

function oneLine(text: string): string {
  return text
    .replace(/[\r\n]+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, 900);
}

function toCrlf(buf: Buffer): Buffer {
  // Bare LF line ends (from a legacy client) become CRLF, as the message/rfc822 part needs.
  const text = buf.toString('latin1').replace(/\r?\n/g, '\r\n');
  return Buffer.from(text, 'latin1');
}

/** Composes the bounce: multipart/report; report-type=delivery-status, from MAILER-DAEMON. */
export function composeBounce(input: BounceInput): Buffer {
  const now = input.now ?? new Date();
  const boundary = `=_sluice_${randomBytes(12).toString('hex')}`;
  const domain = input.reportingMta;
  const messageId = `<${Date.now().toString(36)}.${randomBytes(6).toString('hex')}@${domain}>`;
  const delayed = input.action === 'delayed';
  const list = input.failures.map((f) => `  <${f.address}>: ${oneLine(f.diagnostic)}`).join('\r\n');
  const human = [
    `This is the mail system at host ${domain}.`,
    '',
    ...(delayed
      ? [
          '####################################################################',
          '# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #',
          '####################################################################',
          '',
          'Your message could not be delivered yet to one or more recipients.',
          `It was accepted by this relay at ${input.arrivalDate.toUTCString()} (queue id ${input.originalId}).`,
          `Delivery will be retried until ${(input.willRetryUntil ?? now).toUTCString()}.`,
        ]
      : [
          "I'm sorry to have to inform you that your message could not",
          'be delivered to one or more recipients. It is attached below.',
          '',
          `The message was accepted by this relay at ${input.arrivalDate.toUTCString()}`,
          `(queue id ${input.originalId}) and refused by the next server, or it could not`,
          'be delivered before the maximum queue lifetime.',
        ]),
    '',
    list,
    '',
  ].join('\r\n');
  const perMessage = [`Reporting-MTA: dns; ${domain}`, `X-Sluice-Queue-ID: ${input.originalId}`];
  if (input.envid) perMessage.push(`Original-Envelope-Id: ${oneLine(input.envid)}`);
  perMessage.push(`Arrival-Date: ${input.arrivalDate.toUTCString()}`);
  const perRecipient = input.failures.map((f) => {
    const lines: string[] = [];
    if (f.orcpt) lines.push(`Original-Recipient: ${oneLine(f.orcpt)}`);
    lines.push(`Final-Recipient: rfc822; ${f.address}`, `Action: ${delayed ? 'delayed' : 'failed'}`, `Status: ${f.status}`);
    const remote = f.remoteMta ?? input.remoteMta;
    if (remote && f.diagnosticType !== 'x-sluice') lines.push(`Remote-MTA: dns; ${remote}`);
    lines.push(`Diagnostic-Code: ${f.diagnosticType ?? 'smtp'}; ${oneLine(f.diagnostic)}`);
    lines.push(`Last-Attempt-Date: ${now.toUTCString()}`);
    if (delayed && input.willRetryUntil) lines.push(`Will-Retry-Until: ${input.willRetryUntil.toUTCString()}`);
    return lines.join('\r\n');
  });
  const status = `${perMessage.join('\r\n')}\r\n\r\n${perRecipient.join('\r\n\r\n')}\r\n`;
  const originalPart = input.full ? toCrlf(input.original) : toCrlf(headerSection(input.original));
  const head = [
    `From: Mail Delivery System <MAILER-DAEMON@${domain}>`,
    `To: <${input.originalFrom}>`,
    `Subject: ${delayed ? 'Delayed Mail (still being retried)' : 'Undelivered Mail Returned to Sender'}`,
    `Date: ${now.toUTCString()}`,
    `Message-ID: ${messageId}`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated message.',
    '',
    `--${boundary}`,
    'Content-Description: Notification',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    human,
    `--${boundary}`,
    'Content-Description: Delivery report',
    'Content-Type: message/delivery-status',
    '',
    status,
    `--${boundary}`,
    `Content-Description: ${delayed ? 'Delayed' : 'Undelivered'} Message${input.full ? '' : ' Headers'}`,
    input.full ? 'Content-Type: message/rfc822' : 'Content-Type: text/rfc822-headers',
    '',
    '',
  ].join('\r\n');
  const tail = `${originalPart.length && !originalPart.subarray(-2).equals(Buffer.from('\r\n')) ? '\r\n' : ''}\r\n--${boundary}--\r\n`;
  return Buffer.concat([Buffer.from(head, 'utf8'), originalPart, Buffer.from(tail, 'latin1')]);
}

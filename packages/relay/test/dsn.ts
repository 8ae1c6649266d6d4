import { type ParsedMail, simpleParser } from 'mailparser';
import { expect } from 'vitest';

export interface ParsedDsn {
  mail: ParsedMail;
  /** The per-message fields of the message/delivery-status part (RFC 3464 §2.2). */
  perMessage: Record<string, string>;
  /** One record per recipient (RFC 3464 §2.3). */
  recipients: Array<Record<string, string>>;
}

/** Parses a DSN with mailparser: a multipart/report; report-type=delivery-status with a message/delivery-status part. */
export async function parseDsn(raw: Buffer): Promise<ParsedDsn> {
  const mail = await simpleParser(raw, { keepDeliveryStatus: true } as Parameters<typeof simpleParser>[1]);
  const type = mail.headers.get('content-type') as { value: string; params: Record<string, string> };
  expect(type.value).toBe('multipart/report');
  expect(type.params['report-type']).toBe('delivery-status');
  const part = mail.attachments.find((a) => a.contentType === 'message/delivery-status');
  expect(part, 'a message/delivery-status part').toBeDefined();
  // RFC 3464 §2.1: groups of header-style fields separated by blank lines.
  const groups = part!.content
    .toString('utf8')
    .split(/\r?\n\r?\n/)
    .map((g) => g.trim())
    .filter(Boolean)
    .map((g) => Object.fromEntries(g.split(/\r?\n(?![ \t])/).map((l) => [l.slice(0, l.indexOf(':')).trim(), l.slice(l.indexOf(':') + 1).trim()])));
  return { mail, perMessage: groups[0], recipients: groups.slice(1) };
}

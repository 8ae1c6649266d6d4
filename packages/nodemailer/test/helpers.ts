import { generateKeyPairSync } from 'node:crypto';
import type { SendMailOptions } from 'nodemailer';

/** A throwaway DKIM key (2048-bit RSA, PEM). */
export const dkimKey = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});

export const dkim = { domainName: 'example.com', keySelector: 'sluice', privateKey: dkimKey.privateKey };

/** Deterministic bytes (no randomness anywhere in a fixture). */
export function bytes(length: number, seed = 1): Buffer {
  const out = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    out[i] = x >>> 16;
  }
  return out;
}

/**
 * Everything nodemailer would otherwise pick at random or from the clock is fixed: Date, Message-ID
 * and the multipart boundaries (`baseBoundary`, the random part MimeNode builds every boundary from).
 */
export function fixed(n: number, extra: SendMailOptions = {}): SendMailOptions {
  return {
    date: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
    messageId: `<fixture-${n}@example.com>`,
    baseBoundary: `fixture${n}`,
    ...extra,
  };
}

/** The same messages go through nodemailer's SMTP transport and through sluice. */
export const fixtures: Array<{ name: string; mail: SendMailOptions }> = [
  {
    name: 'plain text, a leading dot, a non-ASCII subject',
    mail: fixed(1, {
      from: 'Sender <sender@example.com>',
      to: 'one@example.com, Two <two@example.com>',
      cc: 'three@example.com',
      bcc: 'hidden@example.com',
      subject: 'Grüße: the quarterly numbers',
      text: 'Hello,\n.leading dot\n..two dots\nlast line',
    }),
  },
  {
    name: 'text and html alternatives',
    mail: fixed(2, {
      from: 'news@example.com',
      to: 'reader@example.com',
      subject: 'Issue 42',
      text: 'Plain version',
      html: '<h1>Issue 42</h1><p>Rich version with a very long line '.concat('lorem ipsum '.repeat(40), '</p>'),
      headers: { 'X-Campaign': 'issue-42' },
      list: { unsubscribe: 'https://example.com/unsubscribe' },
    }),
  },
  {
    name: 'attachments: text, binary, an inline image',
    mail: fixed(3, {
      from: 'reports@example.com',
      to: ['finance@example.com', 'audit@example.com'],
      subject: 'Report with attachments',
      text: 'See attached.',
      html: '<p>See attached.</p><img src="cid:logo@example.com">',
      attachments: [
        { filename: 'report.csv', content: 'region,total\nnorth,12\nsouth,30\n' },
        { filename: 'logo.png', content: bytes(3000, 7), cid: 'logo@example.com', contentType: 'image/png' },
        { filename: 'data.bin', content: bytes(200_000, 3) },
      ],
    }),
  },
  {
    name: 'DKIM-signed, with an attachment',
    mail: fixed(4, {
      from: 'signed@example.com',
      to: 'verifier@example.com',
      subject: 'Signed message',
      text: 'This message carries a DKIM-Signature.',
      attachments: [{ filename: 'notes.txt', content: 'signed attachment\n' }],
      dkim,
    }),
  },
];

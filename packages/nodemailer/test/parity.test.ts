import { type MockServer, type ReceivedMessage, startMockServer } from '@sluice/mock-server';
import nodemailer, { type SendMailOptions } from 'nodemailer';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type SluiceTransportOptions, sluiceTransport } from '../src/index.js';
import { bytes, dkim, fixed, fixtures } from './helpers.js';

// nodemailer's own SMTP transport and ours send the same messages to the same server: what arrives
// must be the same bytes, the same envelope and the same DSN parameters.

let server: MockServer;
beforeAll(async () => {
  server = await startMockServer({ extensions: { starttls: false } });
});
afterAll(() => server.close());
beforeEach(() => server.clear());

async function viaNodemailer(mail: SendMailOptions, defaults?: SendMailOptions): Promise<ReceivedMessage> {
  const transporter = nodemailer.createTransport({ host: server.host, port: server.port, ignoreTLS: true }, defaults);
  const before = server.inbox.messages.length;
  await transporter.sendMail(mail);
  transporter.close();
  return server.inbox.messages[before]!;
}

async function viaSluice(mail: SendMailOptions, options: Partial<SluiceTransportOptions> = {}, defaults?: SendMailOptions): Promise<ReceivedMessage> {
  const transporter = nodemailer.createTransport(sluiceTransport({ host: server.host, port: server.port, retry: false, ...options }), defaults);
  const before = server.inbox.messages.length;
  await transporter.sendMail(mail);
  await transporter.close();
  return server.inbox.messages[before]!;
}

const paths: Array<[string, Partial<SluiceTransportOptions>]> = [
  ['buffered, BDAT', {}],
  ['streamed, BDAT', { maxBufferSize: 0 }],
  ['buffered, DATA', { chunking: false }],
  ['streamed, DATA', { chunking: false, maxBufferSize: 0 }],
];

describe.each(paths)('byte-identical to nodemailer SMTP (%s)', (_path, options) => {
  it.each(fixtures)('$name', async ({ mail }) => {
    const expected = await viaNodemailer(mail);
    const actual = await viaSluice(mail, options);
    expect(actual.raw!.length).toBe(expected.raw!.length);
    expect(actual.raw!.equals(expected.raw!)).toBe(true);
    expect(actual.from).toBe(expected.from);
    expect(actual.to).toEqual(expected.to);
  });
});

describe('fixtures are deterministic and exercise what they claim', () => {
  it('the same message sent twice is the same bytes; bcc is in the envelope only', async () => {
    const [a, b] = [await viaSluice(fixtures[0]!.mail), await viaSluice(fixtures[0]!.mail)];
    expect(a.raw!.equals(b.raw!)).toBe(true);
    expect(a.to).toContain('hidden@example.com');
    expect(a.raw!.toString()).not.toMatch(/hidden@example\.com/);
  });

  it('multipart messages carry the fixed boundaries', async () => {
    const m = await viaSluice(fixtures[2]!.mail);
    expect(m.raw!.toString()).toContain('boundary="--_NmP-fixture3-Part_1"');
    expect(m.raw!.toString()).toContain('Content-ID: <logo@example.com>');
  });

  it('DKIM signs what goes on the wire (per message, or through the transporter defaults)', async () => {
    const perMessage = await viaSluice(fixtures[3]!.mail);
    const raw = perMessage.raw!.toString();
    expect(raw.startsWith('DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com;')).toBe(true);
    expect(raw).toMatch(/s=sluice;/);
    const { dkim: _, ...unsigned } = fixtures[3]!.mail;
    const viaDefaults = await viaSluice(unsigned, {}, { dkim });
    expect(viaDefaults.raw!.equals(perMessage.raw!)).toBe(true);
    expect((await viaNodemailer(unsigned, { dkim })).raw!.equals(perMessage.raw!)).toBe(true);
  });

  it('a message larger than maxBufferSize (default 1 MiB) streams and still arrives identical', async () => {
    const mail = fixed(5, {
      from: 'big@example.com',
      to: 'one@example.com',
      subject: 'Large',
      text: 'Large attachment',
      attachments: [{ filename: 'big.bin', content: bytes(1_500_000, 11) }],
    });
    const expected = await viaNodemailer(mail);
    const actual = await viaSluice(mail);
    expect(actual.size).toBeGreaterThan(1024 * 1024);
    expect(actual.raw!.equals(expected.raw!)).toBe(true);
    // Streamed: the size is not known up front, so no SIZE= parameter.
    expect(actual.mailParams.SIZE).toBeUndefined();
  });
});

describe('envelope', () => {
  it('honours envelope overrides like nodemailer', async () => {
    const mail = fixed(6, {
      from: 'Visible <visible@example.com>',
      to: 'header-to@example.com',
      subject: 'Envelope override',
      text: 'The envelope is not the headers.',
      envelope: { from: 'bounces+123@example.com', to: ['real-one@example.com', 'real-two@example.com'] },
    });
    const expected = await viaNodemailer(mail);
    const actual = await viaSluice(mail);
    expect(actual.from).toBe('bounces+123@example.com');
    expect(actual.to).toEqual(['real-one@example.com', 'real-two@example.com']);
    expect([actual.from, actual.to]).toEqual([expected.from, expected.to]);
    expect(actual.raw!.equals(expected.raw!)).toBe(true);
    expect(actual.raw!.toString()).toContain('To: header-to@example.com\r\n');
  });

  it('sends the null sender for envelope.from: false', async () => {
    const mail = fixed(7, {
      from: 'mailer-daemon@example.com',
      to: 'x@example.com',
      text: 'bounce',
      envelope: { from: false as unknown as string, to: 'x@example.com' },
    });
    const transporter = nodemailer.createTransport(sluiceTransport({ host: server.host, port: server.port }));
    const info = await transporter.sendMail(mail);
    await transporter.close();
    expect(info.envelope.from).toBe(false);
    expect(server.inbox.messages[0]!.from).toBe('');
  });
});

describe('DSN', () => {
  const cases: Array<[string, NonNullable<SendMailOptions['dsn']>, Record<string, string>, Record<string, string>]> = [
    [
      "nodemailer's names (id, return, recipient), notify as an array",
      { id: 'batch-17', return: 'headers', notify: ['success', 'failure'], recipient: 'original@example.com' },
      { RET: 'HDRS', ENVID: 'batch-17' },
      { NOTIFY: 'SUCCESS,FAILURE', ORCPT: 'rfc822;original@example.com' },
    ],
    [
      'the core names (envid, ret, orcpt with its type), notify as a string',
      { envid: 'x+y=z', ret: 'FULL', notify: 'delay, failure', orcpt: 'rfc822;first@example.com' },
      { RET: 'FULL', ENVID: 'x+2By+3Dz' },
      { NOTIFY: 'DELAY,FAILURE', ORCPT: 'rfc822;first@example.com' },
    ],
    ['NEVER', { notify: 'never', return: 'body' }, { RET: 'FULL' }, { NOTIFY: 'NEVER' }],
  ];

  it.each(cases)('%s', async (_name, dsn, mailParams, rcptParams) => {
    const mail = fixed(8, { from: 'dsn@example.com', to: ['a@example.com', 'b@example.com'], subject: 'DSN', text: 'dsn', dsn });
    const expected = await viaNodemailer(mail);
    const actual = await viaSluice(mail);
    expect(actual.mailParams).toMatchObject(mailParams);
    expect(actual.rcptParams).toEqual([rcptParams, rcptParams]);
    // The same parameters as nodemailer's SMTP transport sends (SIZE aside: nodemailer does not send it).
    const { SIZE: _s, ...ours } = actual.mailParams;
    const { SIZE: _t, ...theirs } = expected.mailParams;
    expect(ours).toEqual(theirs);
    expect(actual.rcptParams).toEqual(expected.rcptParams);
  });

  it('an invalid DSN fails before anything is sent', async () => {
    const transporter = nodemailer.createTransport(sluiceTransport({ host: server.host, port: server.port }));
    const err = await transporter
      .sendMail(fixed(9, { from: 'a@example.com', to: 'b@example.com', text: 'x', dsn: { notify: ['NEVER', 'SUCCESS'] } }))
      .catch((e) => e);
    await transporter.close();
    expect(err).toMatchObject({ code: 'EENVELOPE', outcome: 'rejected' });
    expect(server.connections).toHaveLength(0);
  });
});

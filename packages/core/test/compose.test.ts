import { describe, expect, it } from 'vitest';
import { defineCapabilities, mailEnvelope } from '../src/index.js';
import { pool, server } from './helpers.js';

describe('compose: sendMail() and mailEnvelope()', () => {
  it('mailEnvelope() is the envelope sendMail() sends with: a quoted name with a comma is one address', async () => {
    const s = await server();
    const mail = { from: '"Shop, Inc." <hello@shop.test>', to: '"Doe, John" <john@x.test>, ada@x.test', cc: ['c@x.test'], subject: 'Hi', text: 'Hello' };
    expect(mailEnvelope(mail)).toEqual({ from: 'hello@shop.test', to: ['john@x.test', 'ada@x.test', 'c@x.test'] });
    const result = await pool(s).sendMail(mail);
    expect(result.envelope).toEqual(mailEnvelope(mail));
    expect(s.inbox.messages[0]).toMatchObject({ from: 'hello@shop.test', to: ['john@x.test', 'ada@x.test', 'c@x.test'] });
  });

  it('defineCapabilities() turns on what it is given and leaves every other extension off', async () => {
    const s = await server({ extensions: { chunking: false, dsn: false, smtpUtf8: false, size: false } });
    const offered = (await pool(s).verify()).capabilities;
    expect(defineCapabilities({ esmtp: true, pipelining: true, eightBitMime: true, enhancedStatusCodes: true })).toEqual({ ...offered, raw: {} });
  });
});

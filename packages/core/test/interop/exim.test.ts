/**
 * Interoperability with a real Exim 4 (Debian 12's 4.96, exim4-daemon-heavy), unpacked by
 * scripts/exim/install.sh and started by scripts/exim/start.sh on 127.0.0.1 with its own
 * configuration: PIPELINING, CHUNKING, STARTTLS with a certificate from a private CA, AUTH PLAIN and
 * LOGIN only after TLS, recipients_max = 10, rejected@example.com refused with 550.
 *
 * Exim is the oracle: every accepted message is stored in a maildir, so the assertions compare the
 * stored bytes with the sent ones (header fields and body, after the fields Exim adds on top), and
 * Exim's main log says how each message came (BDAT, TLS, AUTH).
 *
 * The connection-cap test (smtp_accept_max) is in exim-caps.test.ts.
 * Run: `pnpm --filter @sluice/core exec vitest run --config vitest.interop.config.ts test/interop/exim.test.ts`.
 * Skipped under the default vitest config.
 */
import { describe, expect, it } from 'vitest';
import { type Message, type PoolOptions, type SendResult, SluiceError } from '../../src/index.js';
import { differenceFromSent, EXIM_ENABLED, type EximHandle, eximId, receptions, useExim, waitStored } from './exim-instance.js';

const RUN = Date.now().toString(36);
const USER = 'sluice';
const PASS = 'interop-secret';

let handle: EximHandle;

/** No retries: every message must go through on its first transaction (the 30-recipient split aside). */
const newPool = (options: Partial<PoolOptions> = {}) => handle.pool({ retry: false, ...options });

function messageId(tag: string, i: number): string {
  return `<${tag}-${i}.${RUN}@client.sluice.test>`;
}

type Sent = Message & { body: Buffer; messageId: string };

function message(tag: string, i: number, body: string | Buffer, to: string[] = [`rcpt${i}@example.net`]): Sent {
  const header =
    `From: sender@example.org\r\nTo: ${to.length > 3 ? 'undisclosed-recipients:;' : to.join(', ')}\r\nSubject: ${tag} ${i}\r\n` +
    `Message-ID: ${messageId(tag, i)}\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\n`;
  return {
    envelope: { from: 'sender@example.org', to },
    body: Buffer.concat([Buffer.from(header), typeof body === 'string' ? Buffer.from(body) : body]),
    messageId: messageId(tag, i),
  };
}

function textMessage(tag: string, i: number, to?: string[]) {
  return message(tag, i, `Content-Type: text/plain; charset=us-ascii\r\n\r\nMessage ${i} of ${tag}.\r\n`, to);
}

/** Waits for the stored copies and checks each is byte-identical to what was sent. */
async function expectStoredAsSent(sent: Sent[]): Promise<void> {
  const stored = await waitStored(
    handle.instance.dir,
    sent.map((m) => m.messageId),
  );
  for (const m of sent) expect(differenceFromSent(stored.get(m.messageId)![0]!, m.body), m.messageId).toBeNull();
}

describe.skipIf(!EXIM_ENABLED)('Exim interop', () => {
  handle = useExim('main', { EXIM_RECIPIENTS_MAX: '10', EXIM_ACCEPT_MAX: '20' });

  it('verify() sees PIPELINING, CHUNKING, 8BITMIME, SIZE, STARTTLS, and no AUTH before TLS', async () => {
    const v = await newPool().verify();
    expect(v.capabilities).toMatchObject({ esmtp: true, pipelining: true, chunking: true, eightBitMime: true, size: 52428800, starttls: true, auth: [] });
    expect(v.encrypted).toBe(false);
  });

  it('sends with BDAT (CHUNKING) and Exim stores the message', async () => {
    const p = newPool({ maxConnections: 2 });
    const sent = Array.from({ length: 10 }, (_, i) => textMessage('bdat', i));
    const results = await Promise.all(sent.map((m) => p.send(m)));
    await p.close();
    const log = receptions(handle.instance.dir);
    for (const r of results) {
      expect(r.responseCode).toBe(250);
      const entry = log.get(eximId(r.response) ?? '');
      expect(entry, r.response).toBeDefined();
      expect(entry!.chunking).toBe(true);
    }
    await expectStoredAsSent(sent);
  });

  it('the default BDAT window (adaptive) over one connection: 60 messages, each stored once, all by BDAT', async () => {
    const p = newPool({ maxConnections: 1, maxMessagesPerConnection: 100 });
    const sent = Array.from({ length: 60 }, (_, i) => textMessage('window', i));
    const results = await Promise.all(sent.map((m) => p.send(m)));
    await p.close();
    const log = receptions(handle.instance.dir);
    expect(results.every((r) => r.attempts === 1 && r.responseCode === 250)).toBe(true);
    expect(new Set(results.map((r) => r.connectionId)).size).toBe(1);
    for (const r of results) expect(log.get(eximId(r.response) ?? '')?.chunking, r.response).toBe(true);
    const stored = await waitStored(handle.instance.dir, sent.map((m) => m.messageId));
    for (const m of sent) expect(stored.get(m.messageId)).toHaveLength(1);
  });

  it('chunking: { window: 1 } (pinned) over one connection: 20 messages by BDAT', async () => {
    const p = newPool({ maxConnections: 1, chunking: { window: 1 } });
    const sent = Array.from({ length: 20 }, (_, i) => textMessage('window1', i));
    const results = await Promise.all(sent.map((m) => p.send(m)));
    await p.close();
    const log = receptions(handle.instance.dir);
    for (const r of results) expect(log.get(eximId(r.response) ?? '')?.chunking, r.response).toBe(true);
    await expectStoredAsSent(sent);
  });

  it('splits 30 recipients over recipients_max = 10 and delivers to all of them', async () => {
    const to = Array.from({ length: 30 }, (_, i) => `many${i}@example.net`);
    const m = textMessage('rcpt30', 0, to);
    const p = newPool({ maxConnections: 1 });
    const result: SendResult = await p.send(m);
    await p.close();
    expect(result.accepted.map((r) => r.address).sort()).toEqual([...to].sort());
    expect(result.rejected).toEqual([]);
    expect(result.pending).toEqual([]);
    expect(result.attempts).toBe(3);
    const stored = (await waitStored(handle.instance.dir, [messageId('rcpt30', 0)], 30_000, 3)).get(messageId('rcpt30', 0))!;
    expect(stored).toHaveLength(3);
    expect(stored.flatMap((s) => s.envelopeTo).sort()).toEqual([...to].sort());
    for (const copy of stored) {
      expect(copy.envelopeTo.length).toBeLessThanOrEqual(10);
      expect(differenceFromSent(copy, m.body)).toBeNull();
    }
  });

  it('reports the refused recipient (550) and delivers to the rest', async () => {
    const m = textMessage('refused', 0, ['ok@example.net', 'rejected@example.com']);
    const result = await newPool().send(m);
    expect(result.accepted.map((r) => r.address)).toEqual(['ok@example.net']);
    expect(result.rejected).toMatchObject([{ address: 'rejected@example.com', code: 550 }]);
    const [copy] = (await waitStored(handle.instance.dir, [messageId('refused', 0)])).get(messageId('refused', 0))!;
    expect(copy!.envelopeTo).toEqual(['ok@example.net']);
  });

  describe('STARTTLS with a private CA', () => {
    it('verifies the certificate against the CA, upgrades and delivers', async () => {
      const p = newPool({ ignoreTLS: false, requireTLS: true, tls: { ca: handle.instance.ca }, maxConnections: 2 });
      const v = await p.verify();
      expect(v.encrypted).toBe(true);
      expect(v.capabilities.starttls).toBe(false); // not offered again after STARTTLS (RFC 3207 §4.2)
      expect(v.capabilities.auth).toEqual(['PLAIN', 'LOGIN']);
      const sent = Array.from({ length: 5 }, (_, i) => textMessage('tls', i));
      const results = await Promise.all(sent.map((m) => p.send(m)));
      const log = receptions(handle.instance.dir);
      for (const r of results) {
        const entry = log.get(eximId(r.response) ?? '')!;
        expect(entry.protocol).toBe('esmtps');
        expect(entry.tls).not.toBeNull();
      }
      await expectStoredAsSent(sent);
    });

    it('refuses the certificate without the CA (verification is on by default)', async () => {
      const err = await newPool({ ignoreTLS: false })
        .verify()
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(SluiceError);
      expect((err as SluiceError).code).toBe('ETLS');
    });
  });

  describe('AUTH after STARTTLS', () => {
    for (const method of ['PLAIN', 'LOGIN'] as const) {
      it(`authenticates with ${method} and Exim records the user`, async () => {
        const p = newPool({ ignoreTLS: false, requireTLS: true, tls: { ca: handle.instance.ca }, auth: { user: USER, pass: PASS }, authMethod: method });
        const v = await p.verify();
        expect(v.authenticated).toBe(true);
        const m = textMessage(`auth-${method}`, 0);
        const result = await p.send(m);
        const entry = receptions(handle.instance.dir).get(eximId(result.response) ?? '')!;
        expect(entry.protocol).toBe('esmtpsa');
        expect(entry.auth).toBe(`${method.toLowerCase()}:${USER}`);
        await expectStoredAsSent([m]);
      });
    }

    it('a wrong password is a 535 EAUTH, nothing is sent', async () => {
      const p = newPool({ ignoreTLS: false, requireTLS: true, tls: { ca: handle.instance.ca }, auth: { user: USER, pass: 'wrong' }, authMethod: 'PLAIN' });
      const err = await p.send(textMessage('auth-wrong', 0)).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SluiceError);
      expect(err).toMatchObject({ code: 'EAUTH', responseCode: 535 });
    });
  });

  describe('content stored byte-identical', () => {
    const dotted = 'Content-Type: text/plain; charset=us-ascii\r\n\r\n' + '.leading dot\r\n..two dots\r\n.\r\n. \r\nmiddle . dot\r\n.\r\n\r\n.end\r\n';
    const eightBit = Buffer.concat([
      Buffer.from('Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'),
      Buffer.from('Grüße, señor. Ünïcödé — 日本語 — ✓\r\nLatin-1 bytes too: '),
      Buffer.from([0xe9, 0xe8, 0xff, 0x80, 0x0d, 0x0a]),
    ]);
    /** 5 MiB of 76-character base64 lines (the shape of a large attachment). */
    const large = (() => {
      const line = `${'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0'.slice(0, 76)}\r\n`;
      const head = 'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n';
      return head + line.repeat(Math.ceil((5 * 1024 * 1024) / line.length));
    })();

    for (const mode of [
      { name: 'DATA', options: { chunking: false } },
      { name: 'BDAT', options: {} },
    ]) {
      it(`via ${mode.name}: dot-stuffed lines, 8-bit bytes and a 5 MiB message`, async () => {
        const tag = `content-${mode.name}`;
        const sent = [message(tag, 0, dotted), message(tag, 1, eightBit), message(tag, 2, large)];
        const p = newPool({ maxConnections: 1, ...mode.options });
        const results = await Promise.all(sent.map((m) => p.send(m)));
        await p.close();
        const log = receptions(handle.instance.dir);
        for (const r of results) expect(log.get(eximId(r.response) ?? '')!.chunking).toBe(mode.name === 'BDAT');
        await expectStoredAsSent(sent);
      });
    }

    it('the comparison sees one changed byte, a changed header field and a field Exim would not add', async () => {
      const m = message('content-oracle', 0, dotted);
      await newPool().send(m);
      const copy = (await waitStored(handle.instance.dir, [m.messageId])).get(m.messageId)![0]!;
      expect(differenceFromSent(copy, m.body)).toBeNull();
      const flipped = Buffer.from(m.body);
      flipped[flipped.length - 3] ^= 0x20;
      expect(differenceFromSent(copy, flipped)).toMatch(/^bodies differ at byte/);
      expect(differenceFromSent(copy, Buffer.from(m.body.toString('latin1').replace('Subject: ', 'Subject:  '), 'latin1'))).toMatch(/^header field/);
      expect(differenceFromSent({ ...copy, fields: ['X-Added: 1', ...copy.fields] }, m.body)).toMatch(/^unexpected header fields on top: x-added/);
    });
  });
});

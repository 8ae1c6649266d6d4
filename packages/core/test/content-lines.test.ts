import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { type SluiceError } from '../src/index.js';
import { message, pool, server } from './helpers.js';

const CR = 0x0d;
const LF = 0x0a;
const head = 'From: sender@example.com\r\nTo: rcpt0@example.com\r\nSubject: Lines\r\n\r\n';

/** The lines of a received message, split on CRLF only, and any CR or LF that is not part of a CRLF. */
function lines(raw: Buffer): { lines: string[]; bare: number } {
  let bare = 0;
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === CR && raw[i + 1] !== LF) bare++;
    if (raw[i] === LF && raw[i - 1] !== CR) bare++;
  }
  return { lines: raw.toString('latin1').split('\r\n'), bare };
}

describe('content line ends: bare CR and bare LF become CRLF (RFC 5321 §2.3.8), in DATA and BDAT', () => {
  for (const chunking of [false, true]) {
    const mode = chunking ? 'BDAT' : 'DATA';
    it(`${mode}: a "\\r.\\r" smuggling attempt arrives as ordinary lines, inside the one message`, async () => {
      const s = await server({ extensions: { chunking } });
      const p = pool(s);
      const body = `${head}one\r.\rMAIL FROM:<evil@example.com>\rtwo\ntail\r`;
      await p.send(message(0, {}, body));
      const [received] = await s.inbox.waitFor(1);
      expect(received!.via).toBe(mode);
      expect(s.inbox.messages).toHaveLength(1);
      const { lines: got, bare } = lines(received!.raw!);
      expect(bare).toBe(0);
      expect(got.slice(4)).toEqual(['one', '.', 'MAIL FROM:<evil@example.com>', 'two', 'tail', '']);
    });

    it(`${mode}: a stream body split at its CRs is normalised the same way`, async () => {
      const s = await server({ extensions: { chunking } });
      const p = pool(s);
      const chunks = [head, 'a\r', '.b\r', '\nc\r'].map((c) => Buffer.from(c, 'latin1'));
      await p.send(message(0, {}, Readable.from(chunks)));
      const [received] = await s.inbox.waitFor(1);
      const { lines: got, bare } = lines(received!.raw!);
      expect(bare).toBe(0);
      expect(got.slice(4)).toEqual(['a', '.b', 'c', '']);
    });
  }
});

describe('lines over 998 octets are refused and never written (RFC 5321 §4.5.3.1.6)', () => {
  it('a Buffer body: EMESSAGE before any connection is opened', async () => {
    const s = await server();
    const p = pool(s);
    const err = (await p.send(message(0, {}, `${head}${'x'.repeat(999)}\r\n`)).catch((e) => e)) as SluiceError;
    expect(err.code).toBe('EMESSAGE');
    expect(err.outcome).toBe('rejected');
    expect(err.message).toMatch(/^Line 5 of the message is longer than 998 octets/);
    expect(s.connections).toHaveLength(0);
  });

  for (const chunking of [false, true]) {
    it(`a stream body (${chunking ? 'BDAT' : 'DATA'}): EMESSAGE, the transaction is abandoned without its end, the next message goes through`, async () => {
      const s = await server({ extensions: { chunking } });
      const p = pool(s);
      const chunks = [head, 'fine\r\n', 'y'.repeat(600), 'y'.repeat(600), '\r\n'].map((c) => Buffer.from(c));
      const err = (await p.send(message(0, {}, Readable.from(chunks))).catch((e) => e)) as SluiceError;
      expect(err.code).toBe('EMESSAGE');
      expect(err.outcome).toBe('rejected');
      expect(err.message).toMatch(/^Line 6 of the message is longer than 998 octets/);
      await p.send(message(1));
      const received = await s.inbox.waitFor(1);
      expect(received.map((m) => m.to)).toEqual([['rcpt1@example.com']]);
    });
  }
});

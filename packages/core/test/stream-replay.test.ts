import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { SluiceError } from '../src/index.js';
import { message, pool, server } from './helpers.js';

// Issue 16, findings 4 and 6: a stream body that needs a second transaction, and one that stops yielding.

const modes = [
  { name: 'DATA', server: { extensions: { chunking: false } } },
  { name: 'BDAT', server: {} },
] as const;

const rcpts = (n: number) => Array.from({ length: n }, (_, i) => `r${i}@example.com`);

function content(lines: number, width = 100): Buffer[] {
  const parts = [Buffer.from('Subject: spooled\r\n\r\n')];
  for (let i = 0; i < lines; i++) parts.push(Buffer.from(`${i} ${'x'.repeat(width)}\r\n`));
  return parts;
}

const spoolDirs = () => readdirSync(tmpdir()).filter((n) => n.startsWith('sluice-body-'));

for (const mode of modes) {
  describe(`a stream body that needs another transaction (${mode.name})`, () => {
    it('"too many recipients": every recipient gets every byte, none left pending', async () => {
      const s = await server({ ...mode.server, maxRecipients: 20, tooManyRecipientsReply: '451 4.5.3 Too many recipients' });
      const p = pool(s, { chunking: { chunkSize: 4096 } });
      const parts = content(200);
      const to = rcpts(30);
      const result = await p.send(message(0, { to }, Readable.from(parts)));
      expect(result.accepted.map((r) => r.address)).toEqual(to);
      expect(result.pending).toEqual([]);
      expect(s.inbox.messages.map((m) => m.to)).toEqual([to.slice(0, 20), to.slice(20)]);
      const whole = Buffer.concat(parts);
      for (const m of s.inbox.messages) expect(m.raw!.equals(whole)).toBe(true);
    });

    it('over the in-memory bound (1 MiB): spooled to a temporary file, replayed to each transaction, the file removed', async () => {
      const s = await server(mode.server);
      const p = pool(s, { maxRecipientsPerTransaction: 2 });
      const parts = content(15_000); // ~1.5 MiB
      const before = spoolDirs();
      const to = rcpts(5);
      const result = await p.send(message(0, { to }, Readable.from(parts)));
      expect(result.accepted.map((r) => r.address)).toEqual(to);
      expect(result.attempts).toBe(3);
      const whole = Buffer.concat(parts);
      expect(whole.length).toBeGreaterThan(1024 * 1024);
      expect(s.inbox.messages.map((m) => m.to)).toEqual([to.slice(0, 2), to.slice(2, 4), to.slice(4)]);
      for (const m of s.inbox.messages) expect(m.raw!.equals(whole)).toBe(true);
      await expect.poll(() => spoolDirs().filter((d) => !before.includes(d))).toEqual([]);
    });

    it('a stream cut before its end (the connection dropped mid-body) is not replayed: outcome failed, nothing delivered', async () => {
      const s = await server({
        ...mode.server,
        faults: [{ command: mode.name === 'DATA' ? 'DATA' : 'BDAT', action: 'drop-in-body', afterBytes: 1, times: 1 }],
      });
      const p = pool(s, { maxRecipientsPerTransaction: 1, chunking: { chunkSize: 16 } });
      const dropped = new Promise((resolve) => p.once('close', resolve));
      // The rest of the body comes only after the server dropped the connection.
      const body = (async function* () {
        yield Buffer.from('Subject: cut\r\n\r\nthe first part\r\n');
        await dropped;
        yield Buffer.from('the rest\r\n');
      })();
      const err = (await p.send(message(0, { to: rcpts(2) }, body)).catch((e) => e)) as SluiceError;
      expect(err).toBeInstanceOf(SluiceError);
      expect(err.outcome).toBe('failed');
      expect(err.attempts).toBe(1);
      expect(s.inbox.messages).toHaveLength(0);
    });
  });

  describe(`a body stream that stops yielding (${mode.name}, RFC 5321 §4.5.3.2.5)`, () => {
    const stalls = {
      'a Readable': () => {
        const r = new Readable({ read() {} });
        r.push('Subject: stalled\r\n\r\nfirst line\r\n');
        return r;
      },
      'an async generator': () =>
        (async function* () {
          yield Buffer.from('Subject: stalled\r\n\r\nfirst line\r\n');
          await new Promise(() => {}); // never resolves
        })(),
    };
    for (const [kind, make] of Object.entries(stalls)) {
      it(`${kind}: the data-block timeout ends it (failed, ETIMEDOUT) and its connection; the message behind it is delivered; close() resolves`, async () => {
        const s = await server(mode.server);
        const p = pool(s, { maxConnections: 1, timeouts: { dataBlock: 300 } });
        const stalled = p.send(message(0, {}, make())).then(
          () => null,
          (e: unknown) => e as SluiceError,
        );
        const behind = p.send(message(1));
        const err = (await stalled)!;
        expect(err).toBeInstanceOf(SluiceError);
        expect(err.outcome).toBe('failed');
        expect(err.code).toBe('ETIMEDOUT');
        expect(err.message).toMatch(/DATA block/);
        expect((await behind).outcome).toBe('delivered');
        await p.close();
        expect(s.inbox.messages.map((m) => m.to)).toEqual([['rcpt1@example.com']]);
        expect(s.connections[0]!.closed).toBe(true);
        expect(s.connections).toHaveLength(2);
      });
    }
  });
}

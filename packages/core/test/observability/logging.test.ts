import { Writable } from 'node:stream';
import { type Logger as PinoLogger, pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { AuthMechanism, PoolOptions } from '../../src/index.js';
import { message, pool, server } from '../helpers.js';

interface Line {
  level: number;
  msg: string;
  connection?: number;
}

/** A pino logger at debug writing to a stream this test reads back (one JSON object per line). */
function pinoCapture(): { logger: PinoLogger; raw: string[]; lines: () => Line[] } {
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      raw.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  const logger = pino({ level: 'debug' }, stream);
  return { logger, raw, lines: () => raw.map((l) => JSON.parse(l) as Line) };
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

const cases: Array<{ mechanism: AuthMechanism; auth: PoolOptions['auth']; secrets: string[] }> = [
  { mechanism: 'PLAIN', auth: { user: 'alice', pass: 'hunter2-secret' }, secrets: ['hunter2-secret', b64('\0alice\0hunter2-secret'), b64('hunter2-secret')] },
  { mechanism: 'LOGIN', auth: { user: 'alice', pass: 'hunter2-secret' }, secrets: ['hunter2-secret', b64('hunter2-secret')] },
  {
    mechanism: 'XOAUTH2',
    auth: { user: 'alice', accessToken: 'ya29.token-value' },
    secrets: ['ya29.token-value', b64('user=alice\x01auth=Bearer ya29.token-value\x01\x01')],
  },
];

describe('logging through pino', () => {
  for (const { mechanism, auth, secrets } of cases) {
    it(`logs every command and reply with the connection id, AUTH ${mechanism} redacted`, async () => {
      const { logger, raw, lines } = pinoCapture();
      const s = await server({ users: { alice: 'hunter2-secret' }, tokens: { alice: 'ya29.token-value' }, extensions: { starttls: true } });
      // DATA, not BDAT: the mock server offers CHUNKING, which sluice would use.
      const p = pool(s, { logger, auth, authMethod: mechanism, maxConnections: 1, chunking: false });
      const first = await p.send(message(1));
      await p.send(message(2, { to: ['a@example.com', 'b@example.com'] }));
      await p.close();

      const trace = lines().filter((l) => /^[CS]: /.test(l.msg));
      // Every line names its connection: a field of the line, not a format argument pino drops.
      expect(trace.length).toBeGreaterThan(10);
      for (const l of trace) {
        expect(l.connection).toBe(first.connectionId);
        expect(l.level).toBe(20); // pino's debug
      }
      const msgs = trace.map((l) => l.msg);
      // Setup as written, then both transactions command by command (pipelined: the replies follow the group).
      expect(msgs.slice(0, 4)).toEqual(['C: GREETING', expect.stringMatching(/^S: 220 /), 'C: EHLO client.sluice.test', expect.stringMatching(/^S: 250[- ]/)]);
      expect(msgs).toContain('C: STARTTLS');
      expect(msgs).toContain(`C: AUTH ${mechanism}${mechanism === 'LOGIN' ? '' : ' ***'}`);
      expect(msgs).toContain('S: 235 (AUTH reply text not logged)');
      const envelope = msgs.slice(msgs.indexOf('C: MAIL FROM:<sender@example.com>'));
      expect(envelope.filter((m) => m.startsWith('C: '))).toEqual([
        'C: MAIL FROM:<sender@example.com>',
        'C: RCPT TO:<rcpt1@example.com>',
        'C: DATA',
        'C: <content> .',
        'C: MAIL FROM:<sender@example.com>',
        'C: RCPT TO:<a@example.com>',
        'C: RCPT TO:<b@example.com>',
        'C: DATA',
        'C: <content> .',
        'C: QUIT',
      ]);
      const replies = envelope.filter((m) => m.startsWith('S: ')).map((m) => m.slice(3, 6));
      expect(replies).toEqual(['250', '250', '354', '250', '250', '250', '250', '354', '250', '221']);

      // No secret, in any form, on any line (raw text: pino's fields included).
      for (const line of raw) for (const secret of secrets) expect(line).not.toContain(secret);
      // No content either.
      for (const line of raw) expect(line).not.toContain('Hello 1');
    });
  }

  it('still calls a (message, meta) logger message first', async () => {
    const calls: unknown[][] = [];
    const logger = { debug: (...args: unknown[]) => void calls.push(args) };
    const s = await server();
    const p = pool(s, { logger, maxConnections: 1 });
    const result = await p.send(message(1));
    expect(calls.length).toBeGreaterThan(5);
    for (const [msg, meta] of calls) {
      expect(typeof msg).toBe('string');
      expect(meta).toEqual({ connection: result.connectionId });
    }
    expect(calls.map(([m]) => m)).toContain('C: RCPT TO:<rcpt1@example.com>');
  });
});

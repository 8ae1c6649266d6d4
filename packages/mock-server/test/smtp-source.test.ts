import { describe, expect, it } from 'vitest';
import { useMockServer } from '../src/vitest.js';
import { findBinary, run } from './helpers.js';

// Postfix's smtp-source: an independent, C, HELO-speaking load generator. Its man page says it has
// no command pipelining, so it is the lock-step client here. CI installs postfix.
const smtpSource = findBinary('smtp-source', ['/usr/sbin/smtp-source']);
const missing = !smtpSource;
const why = 'smtp-source is not installed (apt-get install postfix)';

// One server per file, reset before each test (the package's own vitest helper).
const smtp = useMockServer();

describe.skipIf(missing)(`smtp-source${missing ? ` (skipped: ${why})` : ''}`, () => {
  it('delivers 20 messages of 2 KiB over 5 parallel sessions', async () => {
    const result = await run(smtpSource as string, ['-c', '-m', '20', '-s', '5', '-l', '2048', '-M', 'source.test', `127.0.0.1:${smtp.server.port}`]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const messages = await smtp.server.inbox.waitFor(20);
    expect(messages).toHaveLength(20);
    for (const m of messages) {
      expect(m.from).toBe('foo@source.test');
      expect(m.to).toEqual(['foo@source.test']);
      // 2048 payload bytes, plus headers smtp-source adds and CRLFs.
      expect(m.size).toBeGreaterThan(2048);
    }
    expect(smtp.server.connections).toHaveLength(20);
    expect(smtp.server.connections.every((c) => c.closed || c.byCommand.QUIT === 1)).toBe(true);
  });

  it('sends many messages per connection (-d) with several recipients (-r)', async () => {
    const result = await run(smtpSource as string, ['-d', '-m', '30', '-s', '3', '-r', '4', '-l', '100', '-M', 'source.test', `127.0.0.1:${smtp.server.port}`]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const messages = await smtp.server.inbox.waitFor(30);
    expect(messages.every((m) => m.to.length === 4)).toBe(true);
    expect(smtp.server.connections).toHaveLength(3);
    expect(smtp.server.connections.reduce((n, c) => n + c.transactions, 0)).toBe(30);
  });

  it('is refused cleanly when faults reject its recipients', async () => {
    smtp.server.setFaults([{ command: 'RCPT', reply: '550 5.1.1 No such user', message: 2 }]);
    // -A: keep going after a negative reply.
    const result = await run(smtpSource as string, ['-A', '-m', '3', '-s', '1', '-M', 'source.test', `127.0.0.1:${smtp.server.port}`]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const messages = await smtp.server.inbox.waitFor(2);
    expect(messages.map((m) => m.sequence)).toEqual([1, 3]);
  });
});

/**
 * Exim's connection cap against sluice's pool: smtp_accept_max = 5 with a pool of maxConnections 20.
 * Exim greets the 6th connection open at once with "421 Too many concurrent SMTP connections; please
 * try again later." and closes it. A pool must treat that as "this server takes fewer connections",
 * not as a failure of the messages it meant to send there: all 300 messages must be delivered, each
 * exactly once (Exim stores one file per message).
 *
 * Its own Exim instance (DIR sluice-exim/caps), so the cap does not slow exim.test.ts down.
 * Run: `pnpm --filter @sluice/core exec vitest run --config vitest.interop.config.ts test/interop/exim-caps.test.ts`.
 */
import { describe, expect, it } from 'vitest';
import type { SendResult, SluiceError } from '../../src/index.js';
import { EXIM_ENABLED, mainlog, readStored, useExim, waitStored } from './exim-instance.js';

const RUN = Date.now().toString(36);
describe.skipIf(!EXIM_ENABLED)('Exim connection cap (smtp_accept_max = 5)', () => {
  const exim = useExim('caps', { EXIM_ACCEPT_MAX: '5', EXIM_RECIPIENTS_MAX: '10' });

  it('delivers 300/300 through a pool of maxConnections 20', async () => {
    // The pool's default retry policy: a refused connection may be tried again.
    const p = exim.pool({ maxConnections: 20 });
    const connectErrors: SluiceError[] = [];
    p.on('connect-error', (e) => {
      connectErrors.push(e);
    });
    const ids = Array.from({ length: 300 }, (_, i) => `<cap-${i}.${RUN}@client.sluice.test>`);
    const outcomes = await Promise.allSettled(
      ids.map((id, i) =>
        p.send({
          envelope: { from: 'sender@example.org', to: [`cap${i}@example.net`] },
          body: `From: sender@example.org\r\nTo: cap${i}@example.net\r\nSubject: cap ${i}\r\nMessage-ID: ${id}\r\n\r\nMessage ${i}.\r\n`,
        }),
      ),
    );
    await p.close();
    const failed = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [{ i, error: o.reason as SluiceError }] : []));
    const summary = failed.slice(0, 3).map(({ i, error }) => `#${i}: ${error.code} ${error.message}`);
    expect(failed.length, `${failed.length} of 300 failed; first: ${summary.join(' | ')}`).toBe(0);
    const delivered = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value as SendResult] : []));
    expect(delivered).toHaveLength(300);
    // Exim refused connections beyond 5 (else this test proves nothing about the cap).
    expect(mainlog(exim.instance.dir)).toMatch(/Connection from \[127\.0\.0\.1\] refused: too many connections/);
    const stored = await waitStored(exim.instance.dir, ids);
    // Exactly once each.
    expect(ids.filter((id) => stored.get(id)!.length !== 1)).toEqual([]);
    expect(readStored(exim.instance.dir)).toHaveLength(300);
  });
});

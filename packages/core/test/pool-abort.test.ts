import { describe, expect, it } from 'vitest';
import { message, pool, server } from './helpers.js';

describe('a message withdrawn with its AbortSignal while queued', () => {
  it('leaves the queue at once: stats stop counting it and no connection is opened for it', async () => {
    // Greetings take a while, so every message is still queued when it is withdrawn.
    const s = await server({ faults: [{ command: 'CONNECT', action: 'delay', delayMs: 300 }] });
    const p = pool(s, { maxConnections: 10 });
    const controllers = Array.from({ length: 8 }, () => new AbortController());
    const sends = controllers.map((c, i) => p.send(message(i), { signal: c.signal }).then(
      () => 'delivered',
      (e) => e.code,
    ));
    for (const c of controllers.slice(1)) c.abort();
    expect(p.stats.queued).toBe(1);
    expect(await Promise.all(sends)).toEqual(['delivered', ...Array(7).fill('EABORT')]);
    expect(s.inbox.messages.map((m) => m.to[0])).toEqual(['rcpt0@example.com']);
    expect(p.stats).toMatchObject({ queued: 0, delivered: 1, failed: 7 });
  });
});

import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import { createPool, type Pool, type SluiceError } from '../src/index.js';
import { message, server as mockServer } from './helpers.js';

// Finding 2 of issue 16: a server that caps concurrent connections answers 421 at the greeting beyond
// N. No message may fail for it while the server serves us, and the pool's limit must converge to N.

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** smtp-server with maxClients: "421 <name> Too many connected clients, try again in a moment". */
async function smtpServer(maxClients: number): Promise<{ port: number; received: () => number }> {
  let received = 0;
  const s = new SMTPServer({
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    maxClients,
    onData(stream, _session, callback) {
      stream.resume();
      stream.on('end', () => {
        received++;
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => s.close(() => resolve())));
  return { port: (s.server.address() as { port: number }).port, received: () => received };
}

function pool(port: number, options: object = {}): Pool {
  // The default retry policy and concurrencyProbeInterval: the behaviour under test is the default one.
  const p = createPool({ host: '127.0.0.1', port, name: 'client.sluice.test', ...options });
  closers.push(() => p.destroy());
  return p;
}

interface Run {
  counts: Record<string, number>;
  refusals: SluiceError[];
  /** stats.maxConnections read at each connection event after the first burst of attempts ended. */
  limits: number[];
  maxOpen: number;
}

/** Sends `n` messages and records every refusal and the limit over time. */
async function run(p: Pool, n: number): Promise<Run> {
  const refusals: SluiceError[] = [];
  const limits: number[] = [];
  let maxOpen = 0;
  let burstOver = false;
  const observe = () => {
    const s = p.stats;
    maxOpen = Math.max(maxOpen, s.connections - s.connecting);
    if (s.connecting === 0) burstOver = true;
    if (burstOver) limits.push(s.maxConnections);
  };
  p.on('connect', observe);
  p.on('close', observe);
  p.on('connect-error', (e) => {
    refusals.push(e);
    // 'connect-error' is emitted before the pool has acted on it: read the limit once it has.
    queueMicrotask(observe);
  });
  const settled = await Promise.allSettled(Array.from({ length: n }, (_, i) => p.send(message(i))));
  const counts: Record<string, number> = {};
  for (const r of settled) {
    const key = r.status === 'fulfilled' ? 'delivered' : (r.reason as SluiceError).outcome!;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  // A probe still in setup when the last message was delivered: let it end (an event, not a sleep).
  while (p.stats.connecting > 0) await attemptEnded(p);
  return { counts, refusals, limits, maxOpen };
}

/** Resolves on the next 'connect' or 'connect-error'. */
function attemptEnded(p: Pool): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      p.off('connect', done);
      p.off('connect-error', done);
      resolve();
    };
    p.on('connect', done);
    p.on('connect-error', done);
  });
}

describe('a server that caps concurrent connections (421 at the greeting beyond N)', () => {
  it('smtp-server maxClients: 5, maxConnections: 20: 300/300 delivered and the limit settles at 5', async () => {
    const s = await smtpServer(5);
    const p = pool(s.port, { maxConnections: 20 });
    const r = await run(p, 300);
    expect(r.counts).toEqual({ delivered: 300 });
    expect(s.received()).toBe(300);
    // The cap was hit, with smtp-server's own text, and every refusal was a 421 at the greeting.
    expect(r.refusals.length).toBeGreaterThanOrEqual(15);
    for (const e of r.refusals) expect(e).toMatchObject({ responseCode: 421, command: 'GREETING' });
    expect(r.refusals[0]!.response).toMatch(/Too many connected clients/);
    expect(r.maxOpen).toBe(5);
    expect(p.stats.maxConnections).toBe(5);
    // Once the first burst was over the limit never fell to what happened to be open at a refusal.
    expect(Math.min(...r.limits)).toBeGreaterThanOrEqual(4);
  });

  it('the mock server maxConnections: 5 ("421 4.4.5 Too many connections"): 300/300 delivered and the limit settles at 5', async () => {
    const s = await mockServer({ maxConnections: 5 });
    const p = pool(s.port, { maxConnections: 20, tls: { ca: s.ca } });
    const r = await run(p, 300);
    expect(r.counts).toEqual({ delivered: 300 });
    expect(s.inbox.messages).toHaveLength(300);
    expect(r.refusals.length).toBeGreaterThanOrEqual(15);
    for (const e of r.refusals) expect(e).toMatchObject({ responseCode: 421, enhancedCode: '4.4.5', command: 'GREETING' });
    expect(r.maxOpen).toBe(5);
    expect(p.stats.maxConnections).toBe(5);
    expect(Math.min(...r.limits)).toBeGreaterThanOrEqual(4);
  });

  // The texts real servers use (Exim's smtp_accept_max has no enhanced code; others 4.7.0, 4.3.2) and
  // Microsoft 365's 432: only the code decides.
  for (const reply of [
    '421 Too many concurrent SMTP connections',
    '421 4.7.0 Too many connections',
    '421 4.3.2 Service not available',
    '432 4.3.2 Concurrent connections limit exceeded',
  ]) {
    it(`"${reply}" beyond a cap of 3, maxConnections: 10: 100/100 delivered, limit 3`, async () => {
      const s = await mockServer({ maxConnections: 3, connectionLimitReply: reply });
      const p = pool(s.port, { maxConnections: 10, tls: { ca: s.ca } });
      const r = await run(p, 100);
      expect(r.counts).toEqual({ delivered: 100 });
      expect(r.refusals.length).toBeGreaterThanOrEqual(7);
      for (const e of r.refusals) expect(e).toMatchObject({ responseCode: Number(reply.slice(0, 3)), command: 'GREETING' });
      expect(p.stats.maxConnections).toBe(3);
    });
  }
});

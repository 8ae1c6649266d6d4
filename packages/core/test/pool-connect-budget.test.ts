import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createPool, type Pool, type SluiceError } from '../src/index.js';
import { message, pool, server } from './helpers.js';

// Finding 7 of issue 16: a server that accepts TCP and never greets. Each failed attempt used to charge
// one attempt to the head message only, so 20 messages took about 80 minutes to fail and 200 about 13
// hours. Now connect failures are charged to the pool's connect budget, one per round of attempts, and
// when no connection is open and retry.retries + 1 rounds failed, every waiting message fails together
// with the last error: a bound independent of the number of messages (README, "When the server cannot
// be reached").

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const fn of cleanup.splice(0)) fn();
});

/** A real peer that accepts every connection and never says a word. */
async function silentServer(): Promise<{ port: number; accepted: () => number }> {
  const sockets: net.Socket[] = [];
  const srv = net.createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => {
    for (const s of sockets) s.destroy();
    srv.close();
  });
  return { port: (srv.address() as net.AddressInfo).port, accepted: () => sockets.length };
}

const RETRY = { retries: 2, minDelay: 20, maxDelay: 20, jitter: 0 };

function silentPool(port: number, options: object = {}): Pool {
  const p = createPool({ host: '127.0.0.1', port, name: 'client.sluice.test', timeouts: { greeting: 150 }, retry: RETRY, ...options });
  cleanup.push(() => void p.destroy());
  return p;
}

async function settle(sends: Array<Promise<unknown>>): Promise<SluiceError[]> {
  const results = await Promise.allSettled(sends);
  return results.map((r) => (r.status === 'rejected' ? (r.reason as SluiceError) : (null as unknown as SluiceError)));
}

describe('when no connection can be set up, every queued message ends within a bound', () => {
  it('200 messages against a server that never greets: all fail together after retries + 1 rounds of attempts', async () => {
    const s = await silentServer();
    const maxConnections = 5;
    const p = silentPool(s.port, { maxConnections });
    const connectErrors: SluiceError[] = [];
    p.on('connect-error', (e) => connectErrors.push(e));
    const errors = await settle(Array.from({ length: 200 }, (_, i) => p.send(message(i))));
    for (const e of errors) expect(e).toMatchObject({ outcome: 'failed', code: 'ETIMEDOUT', command: 'GREETING', attempts: 0 });
    expect(p.stats).toMatchObject({ failed: 200, queued: 0, delivered: 0 });
    // retries + 1 = 3 rounds of at most maxConnections attempts each, whatever the number of messages.
    expect(s.accepted()).toBeGreaterThanOrEqual(RETRY.retries + 1);
    expect(s.accepted()).toBeLessThanOrEqual((RETRY.retries + 1) * maxConnections);
    // The attempts still in setup when the budget ran out are cut, not counted: at most one error each.
    expect(connectErrors.length).toBeLessThanOrEqual(s.accepted());
    for (const e of connectErrors) expect(e).toMatchObject({ code: 'ETIMEDOUT', command: 'GREETING' });
  });

  it("one message: fails after exactly retries + 1 attempts, with the last attempt's error", async () => {
    const s = await silentServer();
    const p = silentPool(s.port);
    const [error] = await settle([p.send(message(1))]);
    expect(error).toMatchObject({ outcome: 'failed', code: 'ETIMEDOUT', command: 'GREETING' });
    expect(s.accepted()).toBe(RETRY.retries + 1);
  });

  it('a message sent after the budget ran out gets one fresh attempt, then fails', async () => {
    const s = await silentServer();
    const p = silentPool(s.port);
    await settle([p.send(message(1))]);
    const before = s.accepted();
    const [error] = await settle([p.send(message(2))]);
    expect(error).toMatchObject({ outcome: 'failed', code: 'ETIMEDOUT' });
    expect(s.accepted()).toBe(before + 1);
  });

  it('a refused connection (nothing listening, every attempt reset) is bounded the same way', async () => {
    // The mock server dropping every connection at once: an unreachable server that no other test can
    // take the port of.
    const s = await server({ faults: [{ command: 'CONNECT', action: 'drop' }] });
    const p = pool(s, { maxConnections: 5, retry: RETRY });
    const errors = await settle(Array.from({ length: 50 }, (_, i) => p.send(message(i))));
    for (const e of errors) expect(e).toMatchObject({ outcome: 'failed', code: 'ECONNECTION' });
    expect(s.connections.length).toBeLessThanOrEqual((RETRY.retries + 1) * 5);
  });

  it('a server that works again before the budget is used delivers everything', async () => {
    const s = await server({ faults: [{ command: 'CONNECT', action: 'drop', times: 2 }] });
    const p = pool(s, { maxConnections: 1, retry: RETRY });
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => p.send(message(i))));
    expect(results.map((r) => r.status)).toEqual(Array(10).fill('fulfilled'));
    expect(s.inbox.messages).toHaveLength(10);
  });
});

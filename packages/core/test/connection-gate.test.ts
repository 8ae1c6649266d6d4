import { describe, expect, it } from 'vitest';
import type { ConnectionGate, ConnectionLease } from '../src/index.js';
import { message, pool, server } from './helpers.js';

/**
 * A real in-process counting semaphore, the pool's peer through `connectionGate` (the shape
 * @sluice/queue implements on Redis). It records what the pool did with it.
 */
class Semaphore implements ConnectionGate {
  held = 0;
  peak = 0;
  acquired = 0;
  released = 0;
  readonly leases: Array<{ lease: ConnectionLease; revoke: () => void }> = [];
  readonly waitSignals: AbortSignal[] = [];
  private readonly waiters: Array<() => void> = [];

  constructor(private permits: number) {}

  acquire(signal: AbortSignal): Promise<ConnectionLease> {
    this.waitSignals.push(signal);
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal.removeEventListener('abort', onAbort);
        this.permits--;
        this.held++;
        this.acquired++;
        this.peak = Math.max(this.peak, this.held);
        const lost = new AbortController();
        let done = false;
        const lease = {
          lost: lost.signal,
          release: () => {
            if (done) throw new Error('released twice');
            done = true;
            this.held--;
            this.released++;
            this.permits++;
            this.waiters.shift()?.();
          },
        };
        this.leases.push({ lease, revoke: () => lost.abort() });
        resolve(lease);
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(grant);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      if (this.permits > 0) grant();
      else this.waiters.push(grant);
    });
  }
}

describe('connectionGate', () => {
  it('opens no connection without a lease, and releases every lease when the connection closes', async () => {
    // The server refuses a third connection: a pool that opened more than the gate allows would see 421s.
    const s = await server({ rtt: 10, maxConnections: 2 });
    const gate = new Semaphore(2);
    const p = pool(s, { maxConnections: 8, connectionGate: gate, maxMessagesPerConnection: 5 });
    const refused: number[] = [];
    p.on('connect-error', (e) => refused.push(e.responseCode ?? 0));
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => p.send(message(i))));
    expect(results.every((r) => r.outcome === 'delivered')).toBe(true);
    await p.close();
    expect(refused).toEqual([]);
    expect(gate.peak).toBe(2);
    // 30 messages, 5 per connection: at least 6 connections, each with its own lease, all released.
    expect(gate.acquired).toBeGreaterThanOrEqual(6);
    expect(gate.released).toBe(gate.acquired);
    expect(gate.held).toBe(0);
    expect(s.inbox.messages).toHaveLength(30);
  });

  it('a lost lease: the connection finishes the message in flight, starts no new MAIL and QUITs', async () => {
    const s = await server({ rtt: 20 });
    const gate = new Semaphore(1);
    const p = pool(s, { maxConnections: 1, connectionGate: gate });
    const first = p.send(message(1));
    await new Promise<void>((resolve) => p.once('connect', () => resolve()));
    gate.leases[0]!.revoke();
    const rest = [p.send(message(2)), p.send(message(3))];
    expect((await first).connectionId).toBeGreaterThan(0);
    const later = await Promise.all(rest);
    // The first connection took its message to the end, then QUIT; the others went on a new lease.
    expect(s.connections[0]!.byCommand.MAIL).toBe(1);
    expect(s.connections[0]!.byCommand.QUIT).toBe(1);
    expect(new Set(later.map((r) => r.connectionId)).has((await first).connectionId)).toBe(false);
    await p.close();
    expect(gate.acquired).toBe(2);
    expect(gate.held).toBe(0);
  });

  it('a connection that fails to open releases its lease', async () => {
    const s = await server({ faults: [{ command: 'CONNECT', times: 1, action: 'close', reply: '421 4.3.2 Not now' }] });
    const gate = new Semaphore(1);
    const p = pool(s, { maxConnections: 1, connectionGate: gate });
    const errors: number[] = [];
    p.on('connect-error', (e) => errors.push(e.responseCode ?? 0));
    const result = await p.send(message(1));
    expect(result.outcome).toBe('delivered');
    expect(errors).toEqual([421]);
    await p.close();
    expect(gate.acquired).toBe(2);
    expect(gate.released).toBe(2);
  });

  it('destroy() aborts a wait for a lease and fails the queued message', async () => {
    const s = await server();
    const gate = new Semaphore(0);
    const p = pool(s, { connectionGate: gate });
    const sent = p.send(message(1));
    expect(gate.waitSignals).toHaveLength(1);
    await p.destroy();
    await expect(sent).rejects.toMatchObject({ code: 'ECLOSED', outcome: 'failed' });
    expect(gate.waitSignals[0]!.aborted).toBe(true);
    expect(s.connections).toHaveLength(0);
  });

  it('close() with nothing left to send aborts a pending wait', async () => {
    const s = await server();
    const gate = new Semaphore(0);
    const p = pool(s, { connectionGate: gate });
    const controller = new AbortController();
    const sent = p.send(message(1), { signal: controller.signal });
    controller.abort();
    await expect(sent).rejects.toMatchObject({ code: 'EABORT' });
    await p.close();
    expect(gate.waitSignals[0]!.aborted).toBe(true);
    expect(gate.acquired).toBe(0);
  });

  it('refuses a gate without acquire()', () => {
    const s = { host: '127.0.0.1', port: 25 };
    expect(() => pool(s as never, { connectionGate: {} as ConnectionGate })).toThrow(expect.objectContaining({ code: 'EOPTIONS' }));
  });
});

import { once } from 'node:events';
import net from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import { SluiceError, createPool, emptyStats } from '../src/index.js';
import { message, outcomes, pool, server } from './helpers.js';

describe('the pool', () => {
  it('opens connections lazily up to maxConnections and retires each at its message cap', async () => {
    const s = await server();
    const p = pool(s, { maxConnections: 4, maxMessagesPerConnection: 5 });
    let maxOpen = 0;
    p.on('connect', () => {
      maxOpen = Math.max(maxOpen, s.openConnections);
    });
    expect(s.connections).toHaveLength(0);
    await Promise.all(Array.from({ length: 60 }, (_, i) => p.send(message(i))));
    await p.close();
    expect(s.inbox.messages).toHaveLength(60);
    expect(maxOpen).toBeLessThanOrEqual(4);
    expect(s.connections.every((c) => c.transactions <= 5)).toBe(true);
    expect(s.connections.length).toBeGreaterThanOrEqual(12);
    // Every connection that carried messages said QUIT once. A replacement opened for the queue's tail
    // may find it taken by the others before its EHLO is answered: close() cuts such an attempt in
    // setup (it carried nothing), it does not wait for its handshake.
    const carried = s.connections.filter((c) => c.transactions > 0);
    expect(carried.every((c) => c.byCommand.QUIT === 1)).toBe(true);
    expect(carried.reduce((n, c) => n + c.transactions, 0)).toBe(60);
    expect(s.connections.filter((c) => c.byCommand.QUIT !== 1).every((c) => c.transactions === 0 && !c.byCommand.MAIL)).toBe(true);
  });

  it('does not open a second connection for a message a pipelined connection can take', async () => {
    const s = await server();
    const p = pool(s, { maxConnections: 10 });
    for (let i = 0; i < 5; i++) await p.send(message(i));
    expect(s.connections).toHaveLength(1);
  });

  it('lowers its concurrency when the server says "too many connections", and loses nothing', async () => {
    const s = await server({ maxConnections: 3 });
    const p = pool(s, { maxConnections: 10, maxMessagesPerConnection: 10 });
    const counts = await outcomes(Array.from({ length: 100 }, (_, i) => p.send(message(i))));
    expect(counts).toEqual({ delivered: 100 });
    expect(p.stats.maxConnections).toBeLessThanOrEqual(3);
    expect(s.inbox.messages).toHaveLength(100);
  });

  it('retires a connection after 421 and carries on with another', async () => {
    const s = await server({ faults: [{ command: 'MAIL', message: 3, action: 'close', reply: '421 4.3.2 Shutting down' }] });
    const p = pool(s, { maxConnections: 1 });
    const counts = await outcomes(Array.from({ length: 6 }, (_, i) => p.send(message(i))));
    expect(counts).toEqual({ delivered: 6 });
    expect(s.connections.length).toBe(2);
    expect(s.inbox.messages).toHaveLength(6);
  });

  it('recovers when the server closes an idle connection (421 idle timeout)', async () => {
    const s = await server({ idleTimeout: 100 });
    const p = pool(s, { maxConnections: 1 });
    await p.send(message(0));
    await vi.waitFor(() => expect(s.openConnections).toBe(0), { timeout: 2000 });
    const result = await p.send(message(1));
    expect(result.outcome).toBe('delivered');
    expect(s.connections).toHaveLength(2);
    expect(s.inbox.messages).toHaveLength(2);
  });

  it('close() drains the queue, then QUITs; later sends fail with ECLOSED', async () => {
    const s = await server({ rtt: 10 });
    const p = pool(s, { maxConnections: 2 });
    const sends = Array.from({ length: 10 }, (_, i) => p.send(message(i)));
    await p.close();
    expect(await outcomes(sends)).toEqual({ delivered: 10 });
    // The server hears the last FIN a moment after the client's sockets closed.
    await vi.waitFor(() => expect(s.openConnections).toBe(0));
    expect(s.connections.every((c) => c.byCommand.QUIT === 1)).toBe(true);
    await expect(p.send(message(99))).rejects.toMatchObject({ code: 'ECLOSED' });
    await p.close(); // idempotent
  });

  it('close() waits for a sendMail() that is still composing its message', async () => {
    const s = await server();
    const p = pool(s);
    const sent = p.sendMail({ from: 'a@example.com', to: 'b@example.com', subject: 'late', text: 'x' });
    await p.close();
    await expect(sent).resolves.toMatchObject({ outcome: 'delivered' });
    expect(s.inbox.messages).toHaveLength(1);
    await expect(p.sendMail({ from: 'a@example.com', to: 'b@example.com', text: 'x' })).rejects.toMatchObject({ code: 'ECLOSED' });
  });

  it('destroy() fails what is queued and closes every socket', async () => {
    const s = await server({ rtt: 50 });
    const p = pool(s, { maxConnections: 1 });
    const sends = Array.from({ length: 5 }, (_, i) => p.send(message(i)));
    await p.destroy();
    const counts = await outcomes(sends);
    expect((counts.failed ?? 0) + (counts.unknown ?? 0) + (counts.delivered ?? 0)).toBe(5);
    expect(counts.failed).toBeGreaterThanOrEqual(4);
    await vi.waitFor(() => expect(s.openConnections).toBe(0));
  });

  it('aborts a queued send through its AbortSignal without writing it', async () => {
    const s = await server({ rtt: 20 });
    const p = pool(s, { maxConnections: 1 });
    const controller = new AbortController();
    const first = p.send(message(0));
    const second = p.send(message(1), { signal: controller.signal });
    controller.abort();
    await expect(second).rejects.toMatchObject({ code: 'EABORT', outcome: 'failed' });
    await first;
    expect(s.inbox.messages.map((m) => m.to[0])).toEqual(['rcpt0@example.com']);
    const already = AbortSignal.abort();
    await expect(p.send(message(2), { signal: already })).rejects.toMatchObject({ code: 'EABORT' });
  });

  it('signals backpressure with full and drain', async () => {
    const s = await server();
    const p = pool(s, { highWaterMark: 10, maxConnections: 1 });
    const sends = [];
    for (let i = 0; i < 15; i++) sends.push(p.send(message(i)));
    expect(p.full).toBe(true);
    await once(p, 'drain');
    expect(p.full).toBe(false);
    await Promise.all(sends);
  });

  it('refuses sends beyond maxQueued with EQUEUEFULL', async () => {
    const s = await server();
    const p = pool(s, { maxQueued: 2, maxConnections: 1 });
    const a = p.send(message(0));
    const b = p.send(message(1));
    await expect(p.send(message(2))).rejects.toMatchObject({ code: 'EQUEUEFULL' });
    await Promise.all([a, b]);
  });

  it('enforces rateLimit before sending', async () => {
    const s = await server();
    const p = pool(s, { rateLimit: { messages: 5, per: 200, burst: 1 } });
    const started = Date.now();
    await Promise.all(Array.from({ length: 4 }, (_, i) => p.send(message(i))));
    // One token at once, then one every 40 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
  });

  it('verify() runs the setup and reports what the server offers', async () => {
    const s = await server({ extensions: { starttls: true } });
    const p = pool(s);
    const v = await p.verify();
    expect(v.encrypted).toBe(true);
    expect(v.capabilities).toMatchObject({ pipelining: true, chunking: true, smtpUtf8: true, dsn: true });
    await expect(pool(s, { tls: {} }).verify()).rejects.toMatchObject({ code: 'ETLS' });
  });

  it('verify() stops at its AbortSignal when the server never greets', async () => {
    const s = await server({ faults: [{ command: 'CONNECT', action: 'stall' }] });
    await expect(pool(s).verify({ signal: AbortSignal.timeout(100) })).rejects.toMatchObject({ code: 'EABORT' });
  });

  it('verify({ timeout }) rejects with ETIMEDOUT and cuts the connection when the server never greets', async () => {
    // A TCP peer that accepts and never speaks: it sees the client's socket close.
    const closed: Array<Promise<unknown>> = [];
    const silent = net.createServer((socket) => {
      closed.push(once(socket, 'close'));
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as net.AddressInfo;
      const p = createPool({ host: '127.0.0.1', port, name: 'client.sluice.test' });
      const err = (await p.verify({ timeout: 100 }).catch((e) => e)) as SluiceError;
      expect(err).toMatchObject({ code: 'ETIMEDOUT', kind: 'transient', command: 'VERIFY' });
      expect(closed).toHaveLength(1);
      await closed[0];
    } finally {
      silent.close();
    }
  });

  it('verify({ timeout }) resolves as usual when the server answers in time', async () => {
    const s = await server();
    const v = await pool(s).verify({ timeout: 5000 });
    expect(v.capabilities.pipelining).toBe(true);
    await expect(pool(s).verify({ timeout: -5 })).rejects.toMatchObject({ code: 'EOPTIONS' });
  });

  it.each([
    ['BDAT', true],
    ['pipelined DATA', false],
  ])(
    '%s: messages the server cannot take settle at once while others are handed out (re-entrant scheduling), in order, nothing lost',
    async (_mode, chunking) => {
      const s = await server({ extensions: { smtpUtf8: false, chunking } });
      const p = pool(s, { maxConnections: 1, maxMessagesPerConnection: 1000 });
      const sends = Array.from({ length: 60 }, (_, i) =>
        p.send(message(i, i % 3 === 0 ? { to: [`josé${i}@example.com`] } : {})).then(
          () => 'delivered',
          (e) => e.code,
        ),
      );
      const results = await Promise.all(sends);
      expect(results).toEqual(Array.from({ length: 60 }, (_, i) => (i % 3 === 0 ? 'ECAPABILITY' : 'delivered')));
      expect(s.inbox.messages.map((m) => m.to[0])).toEqual(
        Array.from({ length: 60 }, (_, i) => i)
          .filter((i) => i % 3 !== 0)
          .map((i) => `rcpt${i}@example.com`),
      );
      expect(s.connections).toHaveLength(1);
      expect(p.stats).toMatchObject({ delivered: 40, rejected: 20, queued: 0, inFlight: 0 });
    },
  );

  it('emptyStats() is the stats of a pool that has done nothing yet', () => {
    const p = createPool({ host: 'smtp.example.com', maxConnections: 7 });
    expect(emptyStats(7)).toEqual(p.stats);
    expect(Object.values(emptyStats()).every((v) => v === 0)).toBe(true);
  });

  it('reports stats and events', async () => {
    const s = await server();
    const p = pool(s);
    const sent: string[] = [];
    p.on('sent', (r) => sent.push(r.envelope.to[0]!));
    const idle = once(p, 'idle');
    await Promise.all([p.send(message(0)), p.send(message(1))]);
    await idle;
    expect(sent.sort()).toEqual(['rcpt0@example.com', 'rcpt1@example.com']);
    expect(p.stats).toMatchObject({ delivered: 2, queued: 0, inFlight: 0 });
  });

  it('composes with nodemailer in sendMail()', async () => {
    const s = await server();
    const p = pool(s);
    const result = await p.sendMail({
      from: 'Sender <sender@example.com>',
      to: 'a@example.com, B <b@example.com>',
      subject: 'Hello',
      text: 'Plain',
      attachments: [{ filename: 'x.txt', content: 'attached' }],
    });
    expect(result.accepted.map((r) => r.address)).toEqual(['a@example.com', 'b@example.com']);
    expect(result.messageId).toMatch(/^<.+@.+>$/);
    const raw = s.inbox.messages[0]!.raw!.toString();
    expect(raw).toContain('Subject: Hello');
    expect(raw).toContain('filename=x.txt');
  });

  it('fails fast with EAUTH for every queued message when credentials are refused', async () => {
    const s = await server({ extensions: { starttls: true }, users: { u: 'p' } });
    const p = pool(s, { auth: { user: 'u', pass: 'bad' } });
    const counts = await outcomes(Array.from({ length: 3 }, (_, i) => p.send(message(i))));
    expect(counts).toEqual({ failed: 3 });
  });

  it('errors carry a stable code and are SluiceErrors', async () => {
    // A server that drops every connection before its greeting: it cannot be reached.
    const s = await server({ faults: [{ command: 'CONNECT', action: 'drop' }] });
    const p = pool(s, { retry: { retries: 1, minDelay: 1, maxDelay: 1 } });
    const err = (await p.send(message(0)).catch((e) => e)) as SluiceError;
    expect(err).toBeInstanceOf(SluiceError);
    expect(err.code).toBe('ECONNECTION');
    expect(err.outcome).toBe('failed');
  });
});

import { once } from 'node:events';
import { Readable } from 'node:stream';
import { type MockServer, startMockServer } from '@sluice/mock-server';
import { afterEach, describe, expect, it } from 'vitest';
import { createPoolGroup, type FailoverInfo, type PoolGroup, type PoolGroupOptions, SluiceError, type UpstreamOptions } from '../src/index.js';
import { message, server } from './helpers.js';

const groups: PoolGroup[] = [];
const extraServers: MockServer[] = [];
afterEach(async () => {
  await Promise.all(groups.splice(0).map((g) => g.destroy()));
  await Promise.all(extraServers.splice(0).map((s) => s.close()));
});

function upstream(name: string, s: { host: string; port: number }, extra: Partial<UpstreamOptions> = {}): UpstreamOptions {
  return { name, host: s.host, port: s.port, ...extra };
}

/** A group with fast retries and a short health backoff, destroyed after the test. */
function group(upstreams: UpstreamOptions[], options: Partial<PoolGroupOptions> = {}): PoolGroup {
  const g = createPoolGroup({
    upstreams,
    name: 'client.sluice.test',
    retry: { minDelay: 5, maxDelay: 20 },
    health: { backoff: { minDelay: 30, maxDelay: 120, jitter: 0 }, probeTimeout: 2000 },
    ...options,
  });
  groups.push(g);
  return g;
}

function failovers(g: PoolGroup): FailoverInfo[] {
  const seen: FailoverInfo[] = [];
  g.on('failover', (info) => seen.push(info));
  return seen;
}

const sendAll = (g: PoolGroup, from: number, count: number) => Array.from({ length: count }, (_, i) => g.send(message(from + i)));

describe('failover before DATA', () => {
  it('moves queued messages away from an upstream that refuses connections, and back once it recovers', async () => {
    const primary = await server({ faults: [{ command: 'CONNECT', action: 'drop' }] });
    const secondary = await server();
    const g = group([upstream('primary', primary), upstream('secondary', secondary)]);
    const moves = failovers(g);
    const down = once(g, 'upstream-down');

    const first = await Promise.all(sendAll(g, 0, 10));
    expect(first.map((r) => r.upstream)).toEqual(Array(10).fill('secondary'));
    expect(secondary.inbox.messages).toHaveLength(10);
    expect(primary.inbox.messages).toHaveLength(0);
    const [info] = (await down) as [{ upstream: string; error: SluiceError }];
    expect(info.upstream).toBe('primary');
    expect(info.error.command).toBe('CONNECTION');
    expect(moves).toHaveLength(10);
    expect(moves.every((m) => m.from === 'primary' && m.to === 'secondary' && m.reason === 'withdrawn')).toBe(true);
    const stats = g.stats;
    expect(stats.upstreams.primary).toMatchObject({ health: 'down', movedAway: 10, delivered: 0, failed: 0 });
    expect(stats.upstreams.secondary).toMatchObject({ health: 'healthy', movedAway: 0, delivered: 10 });
    expect(stats).toMatchObject({ delivered: 10, failed: 0, moved: 10 });

    // The primary works again: a probe finds it, and new messages go back to it (it comes first).
    const up = once(g, 'upstream-up');
    primary.setFaults([]);
    expect(((await up) as [{ upstream: string }])[0].upstream).toBe('primary');
    const again = await Promise.all(sendAll(g, 10, 5));
    expect(again.map((r) => r.upstream)).toEqual(Array(5).fill('primary'));
    expect(primary.inbox.messages.map((m) => m.to[0])).toEqual([10, 11, 12, 13, 14].map((i) => `rcpt${i}@example.com`));
    expect(secondary.inbox.messages).toHaveLength(10);
    expect(g.stats.upstreams.primary).toMatchObject({ health: 'healthy', failures: 0, nextProbeAt: null, delivered: 5 });
  });

  it('fails over when the upstream answers 421 at the greeting, and returns when it stops', async () => {
    const primary = await server({ faults: [{ command: 'CONNECT', reply: '421 4.3.2 Service not available' }] });
    const secondary = await server();
    const g = group([upstream('primary', primary), upstream('secondary', secondary)]);
    const errors: SluiceError[] = [];
    g.on('connect-error', (error, name) => name === 'primary' && errors.push(error));

    const results = await Promise.all(sendAll(g, 0, 5));
    expect(results.map((r) => r.upstream)).toEqual(Array(5).fill('secondary'));
    expect(errors[0]).toMatchObject({ responseCode: 421, enhancedCode: '4.3.2', command: 'GREETING' });
    expect(primary.inbox.messages).toHaveLength(0);
    expect(g.stats.upstreams.primary.health).toBe('down');

    const up = once(g, 'upstream-up');
    primary.setFaults([]);
    await up;
    const back = await g.send(message(5));
    expect(back.upstream).toBe('primary');
    expect(primary.inbox.messages.map((m) => m.to)).toEqual([['rcpt5@example.com']]);
  });

  it('fails over while an upstream is down (nothing listens) and recovers when it is started again on its port', async () => {
    const first = await startMockServer({ extensions: { starttls: false } });
    const port = first.port;
    await first.close();
    const secondary = await server();
    const g = group([upstream('primary', { host: '127.0.0.1', port }), upstream('secondary', secondary)]);

    const results = await Promise.all(sendAll(g, 0, 4));
    expect(results.map((r) => r.upstream)).toEqual(Array(4).fill('secondary'));
    expect(g.stats.upstreams.primary).toMatchObject({ health: 'down', movedAway: 4 });
    // While it is down, new messages go straight to the secondary: nothing to move.
    expect((await g.send(message(4))).upstream).toBe('secondary');
    expect(g.stats.upstreams.primary.movedAway).toBe(4);

    const up = once(g, 'upstream-up');
    const primary = await startMockServer({ port, extensions: { starttls: false } });
    extraServers.push(primary);
    await up;
    const back = await Promise.all(sendAll(g, 5, 3));
    expect(back.map((r) => r.upstream)).toEqual(Array(3).fill('primary'));
    expect(primary.inbox.messages).toHaveLength(3);
    expect(secondary.inbox.messages).toHaveLength(5);
  });

  it('moves a message whose send failed before DATA (every RCPT 451 until the retries ran out)', async () => {
    const primary = await server({ faults: [{ command: 'RCPT', reply: '451 4.3.0 Try again later' }] });
    const secondary = await server();
    const g = group([upstream('primary', primary, { retry: { retries: 1, minDelay: 5, maxDelay: 5 } }), upstream('secondary', secondary)]);
    const moves = failovers(g);

    const result = await g.send(message(1));
    expect(result.upstream).toBe('secondary');
    expect(moves).toHaveLength(1);
    expect(moves[0]).toMatchObject({ from: 'primary', to: 'secondary', reason: 'failed' });
    expect(moves[0]!.error).toMatchObject({ command: 'RCPT', responseCode: 451, outcome: 'failed' });
    expect(secondary.inbox.messages.map((m) => m.to)).toEqual([['rcpt1@example.com']]);
    // A refused RCPT says nothing about the server being down.
    expect(g.stats.upstreams.primary).toMatchObject({ health: 'healthy', movedAway: 1, failed: 1 });
  });
});

const VIAS = [
  { via: 'DATA', extensions: { chunking: false }, fault: 'DOT', command: 'DOT' },
  { via: 'BDAT', extensions: { chunking: true }, fault: 'BDAT_LAST', command: 'BDAT' },
] as const;

describe.each(VIAS)('no failover once the content was written ($via)', ({ via, extensions, fault, command }) => {
  it('a connection lost after the end of the content ends unknown and the other upstream never sees the message', async () => {
    const primary = await server({ extensions, faults: [{ command: fault, action: 'drop', deliver: true }] });
    const secondary = await server();
    const g = group([upstream('primary', primary), upstream('secondary', secondary)]);
    const moves = failovers(g);

    const err = (await g.send(message(1)).catch((e: unknown) => e)) as SluiceError & { upstream?: string };
    expect(err).toBeInstanceOf(SluiceError);
    expect(err).toMatchObject({ outcome: 'unknown', code: 'EUNKNOWN', command, upstream: 'primary' });
    expect(primary.inbox.messages.map((m) => m.via)).toEqual([via]);
    expect(secondary.inbox.messages).toHaveLength(0);
    expect(secondary.connections).toHaveLength(0);
    expect(moves).toHaveLength(0);
    expect(g.stats).toMatchObject({ unknown: 1, moved: 0 });
  });

  it('a 4xx to the end of the content ends failed on that upstream, not moved', async () => {
    const primary = await server({ extensions, faults: [{ command: fault, reply: '451 4.3.0 Queue trouble' }] });
    const secondary = await server();
    const g = group([upstream('primary', primary, { retry: { retries: 1, minDelay: 5, maxDelay: 5 } }), upstream('secondary', secondary)]);

    const err = (await g.send(message(1)).catch((e: unknown) => e)) as SluiceError;
    expect(err).toMatchObject({ outcome: 'failed', command, responseCode: 451, upstream: 'primary', attempts: 2 });
    expect(secondary.connections).toHaveLength(0);
    expect(g.stats.upstreams.primary!.movedAway).toBe(0);
  });
});

describe('no failover for a verdict', () => {
  it('a 5xx verdict on the message is not sent elsewhere', async () => {
    const primary = await server({ faults: [{ command: 'MAIL', reply: '550 5.7.1 Sender refused' }] });
    const secondary = await server();
    const g = group([upstream('primary', primary), upstream('secondary', secondary)]);

    const err = (await g.send(message(1)).catch((e: unknown) => e)) as SluiceError;
    expect(err).toMatchObject({ outcome: 'rejected', command: 'MAIL', responseCode: 550, upstream: 'primary' });
    expect(secondary.connections).toHaveLength(0);
  });
});

describe('weights', () => {
  it('3:1 weights over 400 messages split 300:100 within 2%', async () => {
    const a = await server();
    const b = await server();
    const g = group([upstream('a', a, { weight: 3 }), upstream('b', b, { weight: 1 })]);

    const results = await Promise.all(sendAll(g, 0, 400));
    const byUpstream = { a: a.inbox.messages.length, b: b.inbox.messages.length };
    expect(byUpstream.a + byUpstream.b).toBe(400);
    expect(Math.abs(byUpstream.a - 300)).toBeLessThanOrEqual(8);
    expect(results.filter((r) => r.upstream === 'a')).toHaveLength(byUpstream.a);
    const stats = g.stats;
    expect(stats.upstreams.a).toMatchObject({ weight: 3, routed: byUpstream.a, delivered: byUpstream.a, health: 'healthy' });
    expect(stats.upstreams.b).toMatchObject({ weight: 1, routed: byUpstream.b, delivered: byUpstream.b });
    expect(stats).toMatchObject({ delivered: 400, failed: 0, moved: 0, queued: 0, inFlight: 0 });
  });

  it('a weight-0 standby takes messages only while no weighted upstream is healthy', async () => {
    const main = await server();
    const standby = await server();
    const g = group([upstream('standby', standby, { weight: 0 }), upstream('main', main, { weight: 1 })]);
    const results = await Promise.all(sendAll(g, 0, 6));
    expect(results.map((r) => r.upstream)).toEqual(Array(6).fill('main'));
    expect(standby.connections).toHaveLength(0);
  });
});

describe('what does not make an upstream down', () => {
  it('"421 too many connections" beyond the server\'s cap while one connection works: no failover', async () => {
    const primary = await server({ maxConnections: 1 });
    const secondary = await server();
    const g = group([upstream('primary', primary, { maxConnections: 3 }), upstream('secondary', secondary)]);
    const refused: SluiceError[] = [];
    g.on('connect-error', (error) => refused.push(error));

    const results = await Promise.all(sendAll(g, 0, 20));
    expect(results.map((r) => r.upstream)).toEqual(Array(20).fill('primary'));
    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0]).toMatchObject({ responseCode: 421, enhancedCode: '4.4.5' });
    expect(primary.stats.refusedConnections).toBe(refused.length);
    expect(secondary.connections).toHaveLength(0);
    expect(g.stats.upstreams.primary).toMatchObject({ health: 'healthy', movedAway: 0, delivered: 20 });
  });

  it('destroy() ends what is queued with ECLOSED and moves nothing', async () => {
    const primary = await server({ faults: [{ command: 'CONNECT', action: 'stall' }] });
    const secondary = await server();
    const g = group([upstream('primary', primary), upstream('secondary', secondary)]);
    const sent = g.send(message(1));
    await g.destroy();
    await expect(sent).rejects.toMatchObject({ code: 'ECLOSED', outcome: 'failed', upstream: 'primary' });
    expect(secondary.connections).toHaveLength(0);
    await expect(g.send(message(2))).rejects.toMatchObject({ code: 'ECLOSED' });
  });
});

describe('routes: upstreams per send', () => {
  it('a send limited to some upstreams uses and fails over among those only', async () => {
    const a = await server();
    const b = await server({ faults: [{ command: 'CONNECT', action: 'drop' }] });
    const c = await server();
    const g = group([upstream('a', a), upstream('b', b), upstream('c', c)]);

    expect((await g.send(message(0))).upstream).toBe('a');
    const routed = await Promise.all([1, 2].map((i) => g.send(message(i), { upstreams: ['b', 'c'] })));
    expect(routed.map((r) => r.upstream)).toEqual(['c', 'c']);
    expect(a.inbox.messages.map((m) => m.to)).toEqual([['rcpt0@example.com']]);
    expect(c.inbox.messages).toHaveLength(2);
    expect(g.stats.upstreams.b).toMatchObject({ health: 'down', movedAway: 2 });
  });

  it('a send limited to a down upstream is not moved to another one', async () => {
    const a = await server();
    const b = await server({ faults: [{ command: 'CONNECT', action: 'drop' }] });
    const g = group([upstream('a', a), upstream('b', b, { retry: { retries: 2, minDelay: 5, maxDelay: 5 } })]);
    const err = (await g.send(message(1), { upstreams: ['b'] }).catch((e: unknown) => e)) as SluiceError;
    expect(err).toMatchObject({ outcome: 'failed', upstream: 'b', command: 'CONNECTION' });
    expect(a.connections).toHaveLength(0);
    expect(g.stats.moved).toBe(0);
  });

  it('an unknown upstream name is EOPTIONS before anything is sent', async () => {
    const a = await server();
    const g = group([upstream('a', a)]);
    await expect(g.send(message(1), { upstreams: ['nope'] })).rejects.toMatchObject({ code: 'EOPTIONS', outcome: 'rejected' });
    expect(a.connections).toHaveLength(0);
  });
});

describe('the group', () => {
  it('with every upstream down, a message waits and goes to the first one that comes back', async () => {
    const closedPort = async () => {
      const s = await startMockServer({ extensions: { starttls: false } });
      const { port } = s;
      await s.close();
      return port;
    };
    const [p1, p2] = [await closedPort(), await closedPort()];
    const g = group([upstream('primary', { host: '127.0.0.1', port: p1 }), upstream('secondary', { host: '127.0.0.1', port: p2 })], {
      retry: { retries: 50, minDelay: 20, maxDelay: 40 },
    });
    const downs: string[] = [];
    g.on('upstream-down', ({ upstream }) => downs.push(upstream));
    const sent = g.send(message(1));
    const firstDown = once(g, 'upstream-down');
    await firstDown;
    expect(g.stats.queued).toBe(1);

    const up = once(g, 'upstream-up');
    const secondary = await startMockServer({ port: p2, extensions: { starttls: false } });
    extraServers.push(secondary);
    expect(((await up) as [{ upstream: string }])[0].upstream).toBe('secondary');
    const result = await sent;
    expect(result.upstream).toBe('secondary');
    expect(secondary.inbox.messages.map((m) => m.to)).toEqual([['rcpt1@example.com']]);
    expect(downs).toContain('primary');
  });

  it.each([
    { bufferUpTo: undefined, name: 'a stream never read' },
    { bufferUpTo: 1024, name: 'a stream buffered in the group (bufferUpTo)' },
  ])('moves $name whole', async ({ bufferUpTo }) => {
    const primary = await server({ faults: [{ command: 'CONNECT', action: 'drop' }] });
    const secondary = await server();
    const g = group([upstream('primary', primary), upstream('secondary', secondary)]);
    const text = 'From: a@example.com\r\nTo: b@example.com\r\nSubject: stream\r\n\r\nline 1\r\nline 2\r\n';
    const body = Readable.from([Buffer.from(text.slice(0, 20)), Buffer.from(text.slice(20))]);
    const result = await g.send({ envelope: { from: 'a@example.com', to: ['b@example.com'] }, body }, { bufferUpTo });
    expect(result.upstream).toBe('secondary');
    expect(secondary.inbox.messages.map((m) => m.raw?.toString())).toEqual([text]);
  });

  it('close() is not held up by a sendMail() whose composing failed', async () => {
    const s = await server();
    const g = group([upstream('only', s)]);
    const sent = g.sendMail({ from: 'a@example.com', to: 'b@example.com', text: 'x', attachments: [{ path: '/nonexistent/file.txt' }] });
    const closed = g.close();
    await expect(sent).rejects.toBeInstanceOf(SluiceError);
    await closed;
    expect(g.stats.connections).toBe(0);
  });

  it('full and drain count the messages not settled yet', async () => {
    const s = await server({ rtt: 20 });
    const g = group([upstream('only', s)], { highWaterMark: 5 });
    const sends = sendAll(g, 0, 5);
    expect(g.full).toBe(true);
    await once(g, 'drain');
    expect(g.full).toBe(false);
    await Promise.all(sends);
    expect(g.stats).toMatchObject({ delivered: 5, queued: 0, inFlight: 0 });
  });

  it('keeps per-upstream stats: the pool counts plus health, routed and moved away', async () => {
    const primary = await server({ faults: [{ command: 'CONNECT', action: 'drop' }] });
    const secondary = await server();
    const g = group([upstream('primary', primary), upstream('secondary', secondary)]);
    await Promise.all(sendAll(g, 0, 3));
    const { upstreams } = g.stats;
    expect(Object.keys(upstreams)).toEqual(['primary', 'secondary']);
    expect(upstreams.primary).toMatchObject({ name: 'primary', weight: null, routed: 3, movedAway: 3, delivered: 0, failed: 0, queued: 0, inFlight: 0 });
    expect(upstreams.primary!.failures).toBeGreaterThanOrEqual(1);
    expect(upstreams.primary!.nextProbeAt).toBeGreaterThan(0);
    expect(upstreams.secondary).toMatchObject({ routed: 3, delivered: 3, movedAway: 0, failures: 0 });
    await g.close();
    expect(g.stats.connections).toBe(0);
  });

  it('sendMail composes once and goes through the group; verify reports every upstream', async () => {
    const primary = await server();
    const g = group([upstream('primary', primary), upstream('closed', { host: '127.0.0.1', port: 1 })], { defaults: { replyTo: 'desk@example.com' } });
    const verified = await g.verify({ timeout: 2000 });
    expect(verified.primary).toMatchObject({ ok: true });
    expect(verified.closed).toMatchObject({ ok: false, error: { code: 'ECONNECTION' } });
    expect(g.stats.upstreams.closed!.health).toBe('down');
    const result = await g.sendMail({ from: 'a@example.com', to: 'b@example.com', subject: 'Hi', text: 'Hello' });
    expect(result).toMatchObject({ outcome: 'delivered', upstream: 'primary', accepted: [{ address: 'b@example.com' }] });
    // The group's defaults are composed in, once.
    const [received] = primary.inbox.messages;
    const headers = received!.raw!.toString().split('\r\n\r\n')[0]!.split('\r\n');
    expect(headers.filter((h) => /^reply-to:/i.test(h)).map((h) => h.split(':')[1]!.trim())).toEqual(['desk@example.com']);
  });

  it("the caller's signal aborts a queued message: EABORT, never moved", async () => {
    const primary = await server({ faults: [{ command: 'CONNECT', action: 'stall' }] });
    const secondary = await server();
    const g = group([upstream('primary', primary), upstream('secondary', secondary)]);
    const controller = new AbortController();
    const sent = g.send(message(1), { signal: controller.signal });
    controller.abort();
    await expect(sent).rejects.toMatchObject({ code: 'EABORT', outcome: 'failed', upstream: 'primary' });
    expect(secondary.connections).toHaveLength(0);
  });

  it('bad group options are EOPTIONS before anything connects', () => {
    const u = { host: '127.0.0.1', port: 1 };
    const bad = (options: PoolGroupOptions) => {
      try {
        createPoolGroup(options);
      } catch (err) {
        return err as SluiceError;
      }
      throw new Error('no error');
    };
    expect(bad({ upstreams: [] })).toMatchObject({ code: 'EOPTIONS' });
    expect(
      bad({
        upstreams: [
          { name: 'a', ...u },
          { name: 'a', ...u },
        ],
      }).message,
    ).toMatch(/unique/);
    expect(bad({ upstreams: [{ name: 'a', weight: -1, ...u }] }).message).toMatch(/weight/);
    expect(bad({ upstreams: [{ name: 'a', ...u }], host: 'x' } as PoolGroupOptions).message).toMatch(/host belongs in each upstream/);
    expect(bad({ upstreams: [{ name: 'a', ...u, maxConections: 3 } as UpstreamOptions] })).toMatchObject({ code: 'EOPTIONS' });
    expect(bad({ upstreams: [{ name: 'a', ...u, retryUnknown: true }] }).message).toMatch(/retryUnknown/);
    expect(bad({ upstreams: [{ name: 'a', ...u, defaults: { from: 'x@example.com' } } as UpstreamOptions] }).message).toMatch(/defaults belongs to the group/);
    expect(bad({ upstreams: [{ name: 'a', ...u }], url: 'smtp://127.0.0.1:1' } as PoolGroupOptions).message).toMatch(/url belongs in each upstream/);
  });
});

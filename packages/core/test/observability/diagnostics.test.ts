import dc from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CHANNELS,
  type CloseMessage,
  type ConnectionErrorMessage,
  type ConnectMessage,
  type SendContext,
  type SendResult,
  SluiceError,
  type ThrottleMessage,
  type WaitMessage,
} from '../../src/index.js';
import { message, pool, server } from '../helpers.js';

type Event = 'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error';
const unsubscribes: Array<() => void> = [];
afterEach(() => {
  for (const u of unsubscribes.splice(0)) u();
});

/** Every event of `sluice:send`, in order, with the context object it carried. */
function traceSends(): Array<{ event: Event; context: SendContext }> {
  const events: Array<{ event: Event; context: SendContext }> = [];
  const channel = dc.tracingChannel<object, SendContext>(CHANNELS.send);
  const on = (event: Event) => (context: SendContext) => events.push({ event, context });
  const handlers = { start: on('start'), end: on('end'), asyncStart: on('asyncStart'), asyncEnd: on('asyncEnd'), error: on('error') };
  channel.subscribe(handlers);
  unsubscribes.push(() => channel.unsubscribe(handlers));
  return events;
}

function listen<M>(name: string): M[] {
  const messages: M[] = [];
  const fn = (m: unknown) => messages.push(m as M);
  dc.subscribe(name, fn);
  unsubscribes.push(() => dc.unsubscribe(name, fn));
  return messages;
}

describe('sluice:send', () => {
  it('sees every send, its envelope at the start and its result or its error at the end', async () => {
    const events = traceSends();
    const s = await server();
    s.setFaults([{ command: 'RCPT', recipient: 'gone@example.com', reply: '550 5.1.1 No such user' }]);
    const p = pool(s, { maxConnections: 2 });
    const sends = [
      p.send(message(1)),
      p.send(message(2, { to: ['gone@example.com'] })),
      p.send(message(3, { to: ['a@example.com', 'gone@example.com'] })),
      p.sendMail({ from: 'news@example.com', to: 'Reader <reader@example.com>', subject: 'Hi', text: 'Hello' }),
    ];
    const settled = await Promise.allSettled(sends);
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);

    const starts = events.filter((e) => e.event === 'start').map((e) => e.context);
    expect(starts).toHaveLength(4);
    expect(starts.every((c) => c.pool === p)).toBe(true);
    expect(starts.map((c) => c.operation)).toEqual(['send', 'send', 'send', 'sendMail']);
    expect(starts.map((c) => c.envelope)).toEqual([
      { from: 'sender@example.com', to: ['rcpt1@example.com'] },
      { from: 'sender@example.com', to: ['gone@example.com'] },
      { from: 'sender@example.com', to: ['a@example.com', 'gone@example.com'] },
      { from: 'news@example.com', to: ['reader@example.com'] },
    ]);
    expect(starts.map((c) => c.recipients)).toEqual([1, 1, 2, 1]);
    expect(starts[0]!.server).toEqual({ host: s.host, port: s.port, secure: false });

    // One context per send, through all of its events: start, end (sync), then asyncStart and asyncEnd.
    for (const [i, context] of starts.entries()) {
      const mine = events.filter((e) => e.context === context).map((e) => e.event);
      expect(mine).toEqual(i === 1 ? ['start', 'end', 'error', 'asyncStart', 'asyncEnd'] : ['start', 'end', 'asyncStart', 'asyncEnd']);
      const outcome = settled[i]!;
      if (outcome.status === 'fulfilled') {
        expect(context.result).toBe(outcome.value);
        expect((context.result as SendResult).outcome).toBe('delivered');
        expect(context.error).toBeUndefined();
      } else {
        expect(context.error).toBe(outcome.reason);
        expect(context.error).toBeInstanceOf(SluiceError);
        expect(context.error).toMatchObject({ outcome: 'rejected', responseCode: 550, enhancedCode: '5.1.1', command: 'RCPT' });
      }
    }
    expect(starts[2]!.result!.rejected.map((r) => r.address)).toEqual(['gone@example.com']);
  });

  it("traces sendMail with the envelope nodemailer works out, the pool's defaults included", async () => {
    const events = traceSends();
    const s = await server();
    const p = pool(s, { defaults: { from: 'noreply@example.com' } });
    const result = await p.sendMail({ to: '"Doe, John" <john@example.com>, jane@example.com', subject: 'Hi', text: 'Hello' });
    const [start] = events.filter((e) => e.event === 'start').map((e) => e.context);
    expect(start).toMatchObject({ operation: 'sendMail', recipients: 2, envelope: { from: 'noreply@example.com', to: ['john@example.com', 'jane@example.com'] } });
    expect(start!.envelope).toEqual(result.envelope);
    expect(start!.result).toBe(result);
  });

  it('traces input refused before the wire as an error, and nothing once unsubscribed', async () => {
    const events = traceSends();
    const s = await server();
    const p = pool(s);
    await expect(p.send(message(1, { to: ['bad\r\naddress@example.com'] }))).rejects.toMatchObject({ code: 'EENVELOPE' });
    expect(events.map((e) => e.event)).toEqual(['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
    expect(events[0]!.context.error).toMatchObject({ code: 'EENVELOPE', outcome: 'rejected' });

    for (const u of unsubscribes.splice(0)) u();
    expect(dc.tracingChannel(CHANNELS.send).hasSubscribers).toBe(false);
    await p.send(message(2));
    expect(events).toHaveLength(5);
  });
});

describe('connection channels', () => {
  it('publish connect with the extensions, close with null after QUIT, and a failed connect as an error', async () => {
    const connects = listen<ConnectMessage>(CHANNELS.connect);
    const closes = listen<CloseMessage>(CHANNELS.close);
    const errors = listen<ConnectionErrorMessage>(CHANNELS.connectionError);
    const s = await server();
    s.setFaults([{ command: 'CONNECT', times: 1, action: 'close', reply: '421 4.3.2 Not now' }]);
    const p = pool(s, { maxConnections: 1 });
    const result = await p.send(message(1));
    await p.close();

    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ pool: p, phase: 'connect', connectionId: null, server: { host: s.host, port: s.port } });
    expect(errors[0]!.error).toMatchObject({ code: 'ECONNECTION', responseCode: 421 });
    expect(connects.map((c) => c.connectionId)).toEqual([result.connectionId]);
    expect(connects[0]).toMatchObject({ pool: p, encrypted: false });
    expect(connects[0]!.extensions).toEqual(expect.arrayContaining(['PIPELINING', 'SIZE']));
    expect(closes).toEqual([{ pool: p, server: { host: s.host, port: s.port, secure: false }, connectionId: result.connectionId, error: null }]);
  });

  it('publish an open connection lost as an error, then its close with the same error', async () => {
    const closes = listen<CloseMessage>(CHANNELS.close);
    const errors = listen<ConnectionErrorMessage>(CHANNELS.connectionError);
    const s = await server();
    s.setFaults([{ command: 'MAIL', message: 1, action: 'drop' }]);
    const p = pool(s, { maxConnections: 1 });
    await p.send(message(1)); // retried on a new connection
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ pool: p, phase: 'open', error: { code: 'ECONNECTION' } });
    expect(typeof errors[0]!.connectionId).toBe('number');
    expect(closes.filter((c) => c.error)).toEqual([{ pool: p, server: expect.anything(), connectionId: errors[0]!.connectionId, error: errors[0]!.error }]);
  });
});

describe('pool channels', () => {
  it('publish the limit lowered after "421 too many connections"', async () => {
    const throttles = listen<ThrottleMessage>(CHANNELS.throttle);
    const s = await server({ maxConnections: 2 });
    const p = pool(s, { maxConnections: 6, maxMessagesPerConnection: 100 });
    await Promise.all(Array.from({ length: 30 }, (_, i) => p.send(message(i))));
    expect(throttles.length).toBeGreaterThan(0);
    for (const t of throttles) expect(t).toMatchObject({ pool: p, maxConnections: 6, responseCode: 421, pause: expect.any(Number) });
    expect(Math.min(...throttles.map((t) => t.limit))).toBeLessThanOrEqual(2);
    expect(p.stats.maxConnections).toBe(throttles.at(-1)!.limit);
  });

  it('publish a wait for the rate limit with the time to the next token', async () => {
    const waits = listen<WaitMessage>(CHANNELS.wait);
    const s = await server();
    const p = pool(s, { maxConnections: 1, rateLimit: { messages: 20, per: 'second', burst: 1 } });
    await Promise.all([p.send(message(1)), p.send(message(2)), p.send(message(3))]);
    const rate = waits.filter((w) => w.reason === 'rate-limit');
    expect(rate.length).toBeGreaterThan(0);
    for (const w of rate) {
      expect(w.pool).toBe(p);
      expect(w.delay).toBeGreaterThan(0);
      expect(w.delay).toBeLessThanOrEqual(50);
      expect(w.queued).toBeGreaterThan(0);
    }
  });
});

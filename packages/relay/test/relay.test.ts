import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Spool } from '../src/spool.js';
import { legacySender, relayTo, upstream } from './helpers.js';

describe('end to end', () => {
  it('relays a message byte-identical, with its envelope', async () => {
    const server = await upstream();
    const { relay, spoolDir } = await relayTo(server);
    const mail = legacySender(relay.port);
    const raw = Buffer.from(
      'From: app@example.com\r\nTo: a@example.com, b@example.com\r\nSubject: Hello\r\nMessage-ID: <m1@example.com>\r\n\r\nLine one\r\n.leading dot\r\n\r\nÿ bytes\r\n',
      'latin1',
    );
    const info = await mail.sendMail({ envelope: { from: 'bounce@example.com', to: ['a@example.com', 'b@example.com'] }, raw });
    expect(info.response).toMatch(/^250 .*queued as/);
    const [msg] = await server.inbox.waitFor(1);
    expect(msg.from).toBe('bounce@example.com');
    expect(msg.to).toEqual(['a@example.com', 'b@example.com']);
    expect(msg.raw!.equals(raw)).toBe(true);
    await relay.idle(5000);
    expect(await readdir(path.join(spoolDir, 'queue'))).toEqual([]);
    expect(await relay.metrics()).toMatch(/sluice_relay_messages_delivered_total 1\n/);
  });

  it("serves the upstream pool's delivery latency and replies by code on /metrics (prom-client)", async () => {
    const server = await upstream();
    const { relay } = await relayTo(server);
    await legacySender(relay.port).sendMail({ from: 'app@example.com', to: 'a@example.com', subject: 'm', text: 'x' });
    await server.inbox.waitFor(1);
    await relay.idle(5000);
    const text = await relay.metrics();
    const sample = (name: string) => text.split('\n').find((line) => line.startsWith(name))?.split(' ').at(-1);
    expect(text).toMatch(/^# TYPE sluice_relay_pool_\w+_send_duration_seconds histogram$/m);
    expect(text).toMatch(/^sluice_relay_pool_\w+_send_duration_seconds_count\{outcome="delivered"\} 1$/m);
    // The reply to the content: "." after DATA, or BDAT LAST (the mock server offers CHUNKING).
    expect(text).toMatch(/^sluice_relay_pool_\w+_smtp_replies_total\{command="(DOT|BDAT)",code="250"\} 1$/m);
    expect(sample('sluice_relay_messages_accepted_total')).toBe('1');
  });

  it('pools and pipelines many one-connection-per-message senders into few upstream connections', async () => {
    const server = await upstream({ rtt: 10 });
    const { relay } = await relayTo(server, { upstream: { url: `smtp://127.0.0.1:${server.port}`, pool: { maxConnections: 4 } } });
    const mail = legacySender(relay.port);
    const n = 60;
    await Promise.all(
      Array.from({ length: n }, (_, i) => mail.sendMail({ from: 'app@example.com', to: `r${i}@example.com`, subject: `m${i}`, text: `body ${i}` })),
    );
    const got = await server.inbox.waitFor(n, 15_000);
    expect(new Set(got.map((m) => m.to[0])).size).toBe(n);
    expect(server.connections.length).toBeLessThanOrEqual(8);
    await relay.idle(5000);
  });

  it('writes the message to the spool before answering 250', async () => {
    // Upstream refuses everything transiently: the message must be on disk once 250 is received.
    const server = await upstream({ faults: [{ command: 'MAIL', reply: '451 4.3.0 later' }] });
    const { relay, spoolDir } = await relayTo(server, { retryMin: 60_000, retryMax: 60_000 });
    const mail = legacySender(relay.port);
    const info = await mail.sendMail({ from: 'a@example.com', to: 'b@example.com', subject: 's', text: 't' });
    const id = /queued as (\S+)/.exec(info.response)![1];
    const { header, body } = await new Spool(spoolDir).read('queue', id); // another instance: what is on disk
    expect(header).toMatchObject({ v: 1, id, from: 'a@example.com', to: ['b@example.com'] });
    expect(body.toString()).toContain('Subject: s');
  });
});

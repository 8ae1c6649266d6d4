import { chmod, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { relayArgs, spawnRelay } from './cli-helpers.js';
import { parseDsn } from './dsn.js';
import { legacySender, relayTo, tmpDir, upstream, waitUntil } from './helpers.js';

/** A port nobody listens on (a server started and closed): connections to it are refused. */
async function closedPort(): Promise<number> {
  const s = await upstream();
  const { port } = s;
  await s.close();
  return port;
}

const url = (s: { port: number }) => `smtp://127.0.0.1:${s.port}`;

async function twoUpstreams(primary: { port: number }, secondary: { port: number }, extra: Parameters<typeof relayTo>[1] = {}) {
  return relayTo(primary, {
    upstream: undefined,
    upstreams: [
      { name: 'primary', url: url(primary) },
      { name: 'secondary', url: url(secondary) },
    ],
    ...extra,
  });
}

async function send(port: number, to: string | string[], subject = 'hello') {
  return legacySender(port).sendMail({ from: 'sender@example.net', to, subject, text: 'body' });
}

describe('several upstreams: failover before DATA', () => {
  it('fails over when the primary refuses connections, and goes back to it once it is up again', async () => {
    const port = await closedPort();
    const secondary = await upstream();
    const { relay, log } = await twoUpstreams({ port }, secondary);
    await send(relay.port, 'a@example.com', 'while down');
    const [m] = await secondary.inbox.waitFor(1);
    expect(m.to).toEqual(['a@example.com']);
    const down = (await relay.status()).upstreams;
    expect(down.map((u) => [u.name, u.healthy])).toEqual([
      ['primary', false],
      ['secondary', true],
    ]);
    expect(log.records().some((r) => r.msg === 'failing over to the next upstream' && r.from === 'primary' && r.to === 'secondary')).toBe(true);
    expect(await relay.metrics()).toMatch(/sluice_relay_messages_failovers_total [1-9]/);

    const back = await upstream({ port }); // the primary returns on its port
    await waitUntil(async () => (await relay.status()).upstreams[0].healthy, 5000, 'the primary to be retried');
    await send(relay.port, 'b@example.com', 'after recovery');
    const [r] = await back.inbox.waitFor(1);
    expect(r.to).toEqual(['b@example.com']);
    await relay.idle(5000);
    expect(secondary.inbox.messages).toHaveLength(1);
  });

  it('fails over when the primary answers 421 to the connection, and recovers when it stops', async () => {
    const primary = await upstream({ faults: [{ command: 'CONNECT', action: 'close', reply: '421 4.3.2 Service not available, closing channel' }] });
    const secondary = await upstream();
    const { relay } = await twoUpstreams(primary, secondary);
    await send(relay.port, 'a@example.com');
    await secondary.inbox.waitFor(1);
    expect(primary.inbox.messages).toHaveLength(0);
    primary.setFaults([]);
    await waitUntil(async () => (await relay.status()).upstreams[0].healthy, 5000, 'the primary to be retried');
    await send(relay.port, 'b@example.com');
    const [m] = await primary.inbox.waitFor(1);
    expect(m.to).toEqual(['b@example.com']);
    expect(secondary.inbox.messages).toHaveLength(1);
  });

  it('never fails over after the final ".": an unknown outcome is held, a 4xx to the content is retried on the same upstream', async () => {
    const primary = await upstream({
      faults: [
        { command: 'DOT', action: 'drop', times: 1 },
        { command: 'BDAT_LAST', action: 'drop', times: 1 },
      ],
    });
    const secondary = await upstream();
    const { relay, spoolDir } = await twoUpstreams(primary, secondary);
    const info = await send(relay.port, 'a@example.com', 'unknown');
    const id = /queued as (\S+)/.exec(info.response)![1];
    await relay.idle(5000);
    expect(await readdir(path.join(spoolDir, 'held'))).toEqual([`${id}.json`, `${id}.msg`]);
    expect(secondary.inbox.messages).toHaveLength(0);

    primary.setFaults([
      { command: 'DOT', reply: '451 4.3.0 Try again later', times: 1 },
      { command: 'BDAT_LAST', reply: '451 4.3.0 Try again later', times: 1 },
    ]);
    await send(relay.port, 'b@example.com', 'deferred');
    await relay.idle(10_000);
    expect(primary.inbox.messages.map((m) => m.to)).toEqual([['b@example.com']]);
    expect(secondary.inbox.messages).toHaveLength(0);
  });
});

describe('routing by recipient domain', () => {
  it('splits a message per upstream: each server receives exactly its domain recipients; a refusal bounces only that recipient', async () => {
    const a = await upstream();
    const b = await upstream({ faults: [{ command: 'RCPT', recipient: 'gone@example.org', reply: '550 5.1.1 No such user' }] });
    const { relay } = await relayTo(a, {
      upstream: undefined,
      upstreams: [
        { name: 'a', url: url(a) },
        { name: 'b', url: url(b) },
      ],
      routes: { 'example.org': 'b', '*': 'a' },
    });
    await send(relay.port, ['x@example.com', 'y@example.org', 'z@example.com', 'gone@example.org'], 'split');
    await relay.idle(10_000);
    const toA = a.inbox.filter((m) => m.from === 'sender@example.net');
    expect(toA.map((m) => m.to)).toEqual([['x@example.com', 'z@example.com']]);
    expect(b.inbox.messages.map((m) => m.to)).toEqual([['y@example.org']]);
    // The bounce goes to the sender's domain route (a), for the refused recipient only.
    const bounces = a.inbox.filter((m) => m.from === '');
    expect(bounces).toHaveLength(1);
    const { recipients } = await parseDsn(bounces[0].raw!);
    expect(recipients).toEqual([
      expect.objectContaining({ 'Final-Recipient': 'rfc822; gone@example.org', Action: 'failed', Status: '5.1.1', 'Remote-MTA': 'dns; 127.0.0.1' }),
    ]);
  });

  it('is configured from the command line and the environment (the CLI)', async () => {
    const a = await upstream();
    const b = await upstream();
    const spool = await tmpDir();
    const args = relayArgs(a.port, spool).slice(2); // without the single --upstream
    const relay = await spawnRelay(['--upstream', `a=${url(a)}`, '--upstream', `b=${url(b)}`, ...args], {
      SLUICE_RELAY_ROUTE: '.example.org=b example.io=b,a',
    });
    await send(relay.port, ['x@example.com', 'y@sub.example.org', 'w@example.io'], 'cli');
    // example.io may use b and a: tried in the order of --upstream (a first), the same as the rest, so one part.
    const [toA] = await a.inbox.waitFor(1);
    const [toB] = await b.inbox.waitFor(1);
    expect(toA.to).toEqual(['x@example.com', 'w@example.io']);
    expect(toB.to).toEqual(['y@sub.example.org']);
    await relay.waitForLog((r) => r.msg === 'delivered' && Array.isArray(r.to) && r.to.includes('y@sub.example.org'));
    expect(a.inbox.messages).toHaveLength(1);
    expect(b.inbox.messages).toHaveLength(1);
    const started = await relay.waitForLog((r) => r.msg === 'sluice-relay started');
    expect(started.upstreams).toEqual([`a=${url(a)}`, `b=${url(b)}`]);
  });

  it('is configured from a config file (arrays, a route object), with per-upstream relay_auth lines', async () => {
    const a = await upstream();
    const b = await upstream({ users: { buser: 'b-secret-123' }, requireAuth: true, extensions: { starttls: true } });
    const dir = await tmpDir();
    const relayAuth = path.join(dir, 'relay_auth');
    await writeFile(relayAuth, `[127.0.0.1]:${b.port} buser:b-secret-123\n`); // a line for b only: a has no AUTH
    await chmod(relayAuth, 0o600);
    const ca = path.join(dir, 'ca.pem');
    await writeFile(ca, b.ca);
    const config = path.join(dir, 'relay.json');
    await writeFile(
      config,
      JSON.stringify({
        upstream: [`a=${url(a)}`, `b=smtp://buser@127.0.0.1:${b.port}`],
        route: { 'example.org': 'b' },
        passwordFile: relayAuth,
        upstreamCa: ca,
        delayWarning: '4h,1d',
        listen: '127.0.0.1:0',
        http: 'off',
        spool: path.join(dir, 'spool'),
      }),
    );
    const relay = await spawnRelay(['--config', config]);
    const started = await relay.waitForLog((r) => r.msg === 'sluice-relay started');
    expect(started.routes).toEqual({ 'example.org': ['b'] });
    expect(started.delayWarningSeconds).toEqual([4 * 3600, 24 * 3600]);
    await send(relay.port, ['x@example.com', 'y@example.org'], 'config');
    const [toA] = await a.inbox.waitFor(1);
    const [toB] = await b.inbox.waitFor(1);
    expect([toA.to, toA.user]).toEqual([['x@example.com'], null]);
    expect([toB.to, toB.user, toB.secure]).toEqual([['y@example.org'], 'buser', true]);
  });
});

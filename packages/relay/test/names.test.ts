/** Names: a listen address is loopback by what it resolves to, never by how it is spelt; --hostname is the upstream EHLO name. */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { describe, expect, it } from 'vitest';
import { RelayConfigError, startRelay } from '../src/index.js';
import { relayArgs, runCli, spawnRelay } from './cli-helpers.js';
import { legacySender, onCleanup, relayTo, tmpDir, waitUntil } from './helpers.js';

/** A real SMTP server upstream (smtp-server) that records the name each client gave in EHLO. */
async function recordingUpstream(): Promise<{ port: number; ehlo: string[] }> {
  const ehlo: string[] = [];
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onMailFrom(_address, session, callback) {
      ehlo.push(String(session.hostNameAppearsAs));
      callback();
    },
    onData(stream, _session, callback) {
      stream.resume();
      stream.on('end', () => callback());
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  onCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.server.address() as AddressInfo).port, ehlo };
}

describe('the listen address', () => {
  it('is loopback by what it resolves to: "127.evil.example" is refused, "localhost" is fine', async () => {
    const spoolDir = await tmpDir();
    const base = { port: 0, http: false as const, spoolDir, upstream: { url: 'smtp://127.0.0.1:1' } };
    for (const host of ['127.evil.example', '127.0.0.1.nip.example', '::ffff:10.0.0.1', '0.0.0.0']) {
      await expect(startRelay({ ...base, host }), host).rejects.toThrow(RelayConfigError);
      await expect(startRelay({ ...base, host }), host).rejects.toThrow(/Refusing to listen on/);
    }
    const cli = await runCli(['--listen', '127.evil.example:0', '--upstream', 'smtp://127.0.0.1:1', '--spool', spoolDir, '--http', 'off']);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/Refusing to listen on 127\.evil\.example \(it does not resolve: [A-Z_]+\)/);
    const http = await runCli(['--listen', '127.0.0.1:0', '--http', '127.evil.example:0', '--upstream', 'smtp://127.0.0.1:1', '--spool', spoolDir]);
    expect(http.code).toBe(2);
    expect(http.stderr).toMatch(/Refusing to serve HTTP on 127\.evil\.example/);

    const relay = await startRelay({ ...base, host: 'localhost' });
    onCleanup(() => relay.stop());
    expect(relay.port).toBeGreaterThan(0);
  });
});

describe('the upstream EHLO name', () => {
  it('is --hostname (hostname in the API)', async () => {
    const server = await recordingUpstream();
    const { relay } = await relayTo(server, { hostname: 'relay.api.example' });
    await legacySender(relay.port).sendMail({ from: 'a@example.com', to: 'b@example.com', subject: 'api', text: 'x' });
    await relay.idle(10_000);
    expect(server.ehlo).toEqual(['relay.api.example']);

    const cli = await spawnRelay(relayArgs(server.port, await tmpDir(), '--hostname', 'relay.cli.example'));
    await legacySender(cli.port).sendMail({ from: 'a@example.com', to: 'b@example.com', subject: 'cli', text: 'x' });
    await cli.waitForLog((r) => r.msg === 'delivered');
    expect(server.ehlo).toEqual(['relay.api.example', 'relay.cli.example']);
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
  });

  it('is the pool option name when one is given', async () => {
    const server = await recordingUpstream();
    const { relay } = await relayTo(server, {
      hostname: 'relay.api.example',
      upstream: { url: `smtp://127.0.0.1:${server.port}`, pool: { name: 'outbound.example' } },
    });
    await legacySender(relay.port).sendMail({ from: 'a@example.com', to: 'b@example.com', subject: 'named', text: 'x' });
    await relay.idle(10_000);
    expect(server.ehlo).toEqual(['outbound.example']);
  });

  it('is per upstream with ehloName (API) or --ehlo-name [upstream=]NAME (CLI); the others keep the default', async () => {
    const a = await recordingUpstream();
    const b = await recordingUpstream();
    const c = await recordingUpstream();
    const upstreams = (names: Record<string, string | undefined>) =>
      Object.entries({ a, b, c }).map(([name, s]) => ({ name, url: `smtp://127.0.0.1:${s.port}`, ...(names[name] ? { ehloName: names[name] } : {}) }));
    const routes = { 'b.example': 'b', 'c.example': 'c', '*': 'a' };
    const mailToEach = async (port: number) => {
      for (const to of ['x@a.example', 'x@b.example', 'x@c.example']) await legacySender(port).sendMail({ from: 'f@a.example', to, subject: 's', text: 'x' });
    };
    const { relay } = await relayTo(a, { hostname: 'relay.api.example', upstream: undefined, upstreams: upstreams({ b: 'b.api.example' }), routes });
    await mailToEach(relay.port);
    await relay.idle(10_000);
    expect([a.ehlo, b.ehlo, c.ehlo]).toEqual([['relay.api.example'], ['b.api.example'], ['relay.api.example']]);

    const args = ['--listen', '127.0.0.1:0', '--http', 'off', '--spool', await tmpDir(), '--hostname', 'relay.cli.example'];
    for (const u of upstreams({})) args.push('--upstream', `${u.name}=${u.url}`);
    for (const [domain, name] of Object.entries(routes)) args.push('--route', `${domain}=${name}`);
    const cli = await spawnRelay([...args, '--ehlo-name', 'out.cli.example', '--ehlo-name', 'c=c.cli.example']);
    const started = await cli.waitForLog((r) => r.msg === 'sluice-relay started');
    expect(started.ehloNames).toEqual({ a: 'out.cli.example', b: 'out.cli.example', c: 'c.cli.example' });
    await mailToEach(cli.port);
    await waitUntil(() => a.ehlo.length === 2 && b.ehlo.length === 2 && c.ehlo.length === 2);
    expect([a.ehlo[1], b.ehlo[1], c.ehlo[1]]).toEqual(['out.cli.example', 'out.cli.example', 'c.cli.example']);
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);

    const unknown = await runCli([...args, '--ehlo-name', 'd=d.cli.example']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--ehlo-name d=d\.cli\.example: no upstream named "d" \(upstreams: a, b, c\)/);
  });

  it('is --ehlo-name rather than --hostname for a single upstream, from the flag or the environment', async () => {
    const server = await recordingUpstream();
    const cli = await spawnRelay(relayArgs(server.port, await tmpDir(), '--hostname', 'relay.cli.example'), { SLUICE_RELAY_EHLO_NAME: 'out.env.example' });
    await legacySender(cli.port).sendMail({ from: 'a@example.com', to: 'b@example.com', subject: 'env', text: 'x' });
    await cli.waitForLog((r) => r.msg === 'delivered');
    expect(server.ehlo).toEqual(['out.env.example']);
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
  });
});

/** Names: a listen address is loopback by what it resolves to, never by how it is spelt; --hostname is the upstream EHLO name. */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { describe, expect, it } from 'vitest';
import { RelayConfigError, startRelay } from '../src/index.js';
import { relayArgs, runCli, spawnRelay } from './cli-helpers.js';
import { legacySender, onCleanup, relayTo, tmpDir } from './helpers.js';

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
});

import { chmod, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Spool } from '../src/spool.js';
import { relayArgs, runCli, spawnRelay } from './cli-helpers.js';
import { legacySender, tmpDir, upstream, waitUntil } from './helpers.js';

const SECRET = 'Upstream-S3cret-Pa55';

describe('the sluice-relay command', () => {
  it('authenticates upstream with a 0600 password file and environment variables; never logs the password', async () => {
    const server = await upstream({ users: { relayuser: SECRET }, extensions: { starttls: true } });
    const dir = await tmpDir();
    const pw = path.join(dir, 'relay_auth');
    await writeFile(pw, `[127.0.0.1]:${server.port} relayuser:${SECRET}\n`);
    await chmod(pw, 0o600);
    const ca = path.join(dir, 'ca.pem');
    await writeFile(ca, server.ca);
    const relay = await spawnRelay(['--password-file', pw, '--upstream-ca', ca, '--log-level', 'debug'], {
      SLUICE_RELAY_UPSTREAM: `smtp://relayuser@127.0.0.1:${server.port}`,
      SLUICE_RELAY_LISTEN: '127.0.0.1:0',
      SLUICE_RELAY_HTTP: '127.0.0.1:0',
      SLUICE_RELAY_SPOOL: path.join(dir, 'spool'),
    });
    const mail = legacySender(relay.port);
    await mail.sendMail({ from: 'app@example.com', to: 'x@example.com', subject: 'authed', text: 'hello' });
    const [msg] = await server.inbox.waitFor(1);
    expect(msg.user).toBe('relayuser');
    expect(msg.secure).toBe(true);
    await relay.waitForLog((r) => r.msg === 'delivered');
    const all = relay.stdout.join('\n') + relay.stderr();
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain(Buffer.from(SECRET).toString('base64'));
    expect(all).not.toContain(Buffer.from(`\0relayuser\0${SECRET}`).toString('base64'));
    for (const line of relay.stdout) expect(() => JSON.parse(line)).not.toThrow(); // structured logs only
    relay.child.kill('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it('serves /metrics, /health and /status, and `status` reads them or the spool', async () => {
    const server = await upstream({ faults: [{ command: 'MAIL', reply: '451 4.3.0 later' }] });
    const dir = await tmpDir();
    const config = path.join(dir, 'relay.json');
    await writeFile(
      config,
      JSON.stringify({ upstream: `smtp://127.0.0.1:${server.port}`, listen: '127.0.0.1:0', http: '127.0.0.1:0', spool: dir, retryMin: '1m', maxAge: '2d' }),
    );
    const relay = await spawnRelay(['--config', config]);
    const mail = legacySender(relay.port);
    await mail.sendMail({ from: 'app@example.com', to: 'x@example.com', subject: 'later', text: 'x' });
    await relay.waitForLog((r) => String(r.msg).startsWith('deferred'));
    const metrics = await (await fetch(`http://127.0.0.1:${relay.httpPort}/metrics`)).text();
    expect(metrics).toContain('# TYPE sluice_relay_messages_accepted_total counter');
    expect(metrics).toMatch(/^sluice_relay_messages_accepted_total 1$/m);
    expect(metrics).toMatch(/^sluice_relay_messages_deferred_total 1$/m);
    expect(metrics).toMatch(/^sluice_relay_queue_depth 1$/m);
    expect(metrics).toMatch(/^# TYPE sluice_relay_queue_oldest_age_seconds gauge$/m);
    expect(metrics).toMatch(/^sluice_relay_held_messages 0$/m);
    const health = await fetch(`http://127.0.0.1:${relay.httpPort}/health`);
    expect(health.status).toBe(200);
    const viaHttp = await runCli(['status', '--http', `127.0.0.1:${relay.httpPort}`, '--json']);
    expect(JSON.parse(viaHttp.stdout)).toMatchObject({ running: true, queue: { depth: 1, deferred: 1 }, counters: { accepted: 1 } });
    const human = await runCli(['status', '--http', `127.0.0.1:${relay.httpPort}`]);
    expect(human.stdout).toMatch(/queue: 1 message/);
    expect(human.stdout).toMatch(/maxAge|oldest/);
    relay.child.kill('SIGTERM');
    expect(await relay.exited).toBe(0);
    const offline = await runCli(['status', '--spool', dir, '--json']);
    expect(JSON.parse(offline.stdout)).toMatchObject({ running: false, queue: { depth: 1, deferred: 1 }, held: [], dead: 0 });
  });

  it('SIGTERM: stops accepting, finishes what is on the wire, keeps the rest spooled for the next start', async () => {
    const server = await upstream({ rtt: 200 });
    const dir = await tmpDir();
    const args = relayArgs(server.port, dir, '--max-connections', '1', '--max-messages-per-connection', '2');
    let relay = await spawnRelay(args);
    const mail = legacySender(relay.port);
    const n = 12;
    for (let i = 0; i < n; i++) await mail.sendMail({ from: 'app@example.com', to: `r${i}@example.com`, subject: `t${i}`, text: 'x' });
    relay.child.kill('SIGTERM');
    expect(await relay.exited).toBe(0);
    expect(relay.stdout.join('\n')).toContain('"msg":"stopped"');
    const delivered = server.inbox.messages.length;
    const left = (await new Spool(dir).list('queue')).length;
    expect(delivered).toBeLessThan(n);
    expect(delivered + left).toBe(n);
    expect((await readdir(path.join(dir, 'held'))).length).toBe(0);
    relay = await spawnRelay(args);
    await waitUntil(() => server.inbox.messages.length === n, 20_000, 'the rest delivered after restart');
    expect(new Set(server.inbox.messages.map((m) => m.to[0])).size).toBe(n);
    relay.child.kill('SIGTERM');
    await relay.exited;
  }, 40_000);

  it('prints help and rejects unknown options', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--password-file');
    const bad = await runCli(['--frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/frobnicate/);
  });
});

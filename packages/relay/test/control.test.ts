/** The HTTP control port: a token for what changes state, no cross-origin or rebound requests, loopback unless a token is configured. */
import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RelayConfigError, startRelay } from '../src/index.js';
import { runCli, spawnRelay } from './cli-helpers.js';
import { httpCall, legacySender, relayTo, tmpDir, upstream } from './helpers.js';

const TOKEN = 'Control-T0ken-0123456789';

/** The upstream drops the connection after the content, once: the outcome is unknown, the message held. */
const dropAfterContent = () =>
  upstream({
    faults: [
      { command: 'DOT', action: 'drop', times: 1 },
      { command: 'BDAT_LAST', action: 'drop', times: 1 },
    ],
  });

/** A relay with one held message. */
async function relayWithHeld(options: Parameters<typeof relayTo>[1] = {}) {
  const server = await dropAfterContent();
  const ctx = await relayTo(server, options);
  const info = await legacySender(ctx.relay.port).sendMail({ from: 'a@example.com', to: 'b@example.com', subject: 'maybe', text: 'x' });
  const id = /queued as (\S+)/.exec(info.response)![1];
  await ctx.relay.idle(5000);
  expect(await readdir(path.join(ctx.spoolDir, 'held'))).toEqual([`${id}.json`, `${id}.msg`]);
  return { ...ctx, server, id };
}

const heldIds = async (spoolDir: string) => (await readdir(path.join(spoolDir, 'held'))).filter((f) => f.endsWith('.msg'));

describe('the HTTP control port', () => {
  it('refuses POST /release and /flush without the token, or with a wrong one; releases with it; never logs it', async () => {
    const { relay, spoolDir, server, id, log } = await relayWithHeld({ http: { port: 0, token: TOKEN } });
    const port = relay.httpPort!;
    const wrong: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong-token-0123456789' },
      { authorization: TOKEN },
      { authorization: `Basic ${TOKEN}` },
    ];
    for (const headers of wrong) {
      const res = await httpCall(port, 'POST', `/release?id=${id}`, headers);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="sluice-relay"');
      expect(res.body).toMatchObject({ error: { code: 'EUNAUTHORIZED' } });
    }
    expect((await httpCall(port, 'POST', '/flush')).status).toBe(401);
    expect(await heldIds(spoolDir)).toEqual([`${id}.msg`]);
    expect(server.inbox.messages).toHaveLength(0);
    // Reading stays open on loopback.
    expect((await httpCall(port, 'GET', '/status')).status).toBe(200);
    expect((await httpCall(port, 'GET', '/metrics')).status).toBe(200);

    const ok = await httpCall(port, 'POST', `/release?id=${id}`, { authorization: `Bearer ${TOKEN}` });
    expect(ok).toMatchObject({ status: 200, body: { released: [id] } });
    await server.inbox.waitFor(1, 10_000);
    expect((await httpCall(port, 'POST', '/flush', { authorization: `bearer ${TOKEN}` })).status).toBe(200);
    const unknown = await httpCall(port, 'POST', '/release?id=0NOSUCHMESSAGE', { authorization: `Bearer ${TOKEN}` });
    expect(unknown).toMatchObject({ status: 404, body: { error: { code: 'ENOTHELD' } } });
    expect(log.text()).not.toContain(TOKEN);
  });

  it("refuses a browser's cross-origin request and a DNS-rebinding Host, even with the token", async () => {
    const { relay, spoolDir, id } = await relayWithHeld({ http: { port: 0, token: TOKEN, allowedHosts: ['relay.internal'] } });
    const port = relay.httpPort!;
    const auth = { authorization: `Bearer ${TOKEN}` };
    const refused: Record<string, string>[] = [
      { origin: 'http://evil.example' }, // a page elsewhere posting to 127.0.0.1
      { origin: 'http://localhost:3000' }, // another port on this host is another origin
      { 'sec-fetch-site': 'cross-site' },
      { host: `evil.example:${port}` }, // rebinding: evil.example now resolves to 127.0.0.1
      { host: `evil.example:${port}`, origin: `http://evil.example:${port}` },
    ];
    for (const headers of refused) {
      for (const [method, route] of [
        ['POST', `/release?id=${id}`],
        ['GET', '/status'],
      ]) {
        const res = await httpCall(port, method, route, { ...auth, ...headers });
        expect(res.status, JSON.stringify(headers)).toBe(403);
        expect(res.body).toMatchObject({ error: { code: 'EFORBIDDEN' } });
      }
    }
    expect(await heldIds(spoolDir)).toEqual([`${id}.msg`]);
    // Its own origin, a configured name, localhost and IP addresses are fine.
    expect((await httpCall(port, 'GET', '/status', { origin: `http://127.0.0.1:${port}` })).status).toBe(200);
    expect((await httpCall(port, 'GET', '/status', { host: `relay.internal:${port}` })).status).toBe(200);
    expect((await httpCall(port, 'GET', '/status', { host: `localhost:${port}` })).status).toBe(200);
    expect((await httpCall(port, 'GET', '/status', { host: `[::1]:${port}` })).status).toBe(200);
  });

  it('generates a token into the spool (mode 0600) when none is given; `sluice-relay release` uses it', async () => {
    const server = await dropAfterContent();
    const dir = await tmpDir();
    const spool = path.join(dir, 'spool');
    const relay = await spawnRelay(['--upstream', `smtp://127.0.0.1:${server.port}`, '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--spool', spool]);
    const info = await legacySender(relay.port).sendMail({ from: 'a@example.com', to: 'b@example.com', subject: 'maybe', text: 'x' });
    const id = /queued as (\S+)/.exec(info.response)![1];
    await relay.waitForLog((r) => String(r.msg).startsWith('unknown outcome'));
    const file = path.join(spool, 'http-token');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const token = (await readFile(file, 'utf8')).trim();
    expect(token.length).toBeGreaterThanOrEqual(16);
    expect((await httpCall(relay.httpPort!, 'POST', '/release')).status).toBe(401);
    const released = await runCli(['release', id, '--http', `127.0.0.1:${relay.httpPort}`], { SLUICE_RELAY_SPOOL: spool });
    expect(released.stdout).toBe(`released 1 message(s): ${id}\n`);
    await server.inbox.waitFor(1, 10_000);
    expect(relay.stdout.join('\n')).not.toContain(token);
    relay.child.kill('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it('refuses to serve HTTP beyond loopback without a configured token; with one, /status needs it too', async () => {
    const spoolDir = await tmpDir();
    const base = { port: 0, spoolDir, upstream: { url: 'smtp://127.0.0.1:1' } };
    await expect(startRelay({ ...base, http: { host: '0.0.0.0', port: 0 } })).rejects.toThrow(RelayConfigError);
    await expect(startRelay({ ...base, http: { host: '0.0.0.0', port: 0 } })).rejects.toThrow(/beyond loopback the control port needs a token/);
    await expect(startRelay({ ...base, http: { port: 0, token: 'short' } })).rejects.toThrow(/at least 16 characters/);
    const cli = await runCli(['--upstream', 'smtp://127.0.0.1:1', '--listen', '127.0.0.1:0', '--http', '0.0.0.0:0', '--spool', spoolDir]);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/Refusing to serve HTTP on 0\.0\.0\.0.*--http-token-file/);

    const server = await upstream();
    const { relay } = await relayTo(server, { http: { host: '0.0.0.0', port: 0, token: TOKEN } });
    expect((await httpCall(relay.httpPort!, 'GET', '/status')).status).toBe(401);
    expect((await httpCall(relay.httpPort!, 'GET', '/status', { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect((await httpCall(relay.httpPort!, 'GET', '/health')).status).toBe(200);
  });

  it('reads the token from a 0600 file or SLUICE_RELAY_HTTP_TOKEN, refuses a file others can read and a --http-token flag', async () => {
    const server = await upstream();
    const dir = await tmpDir();
    const file = path.join(dir, 'http-token');
    await writeFile(file, `${TOKEN}\n`);
    await chmod(file, 0o644);
    const args = ['--upstream', `smtp://127.0.0.1:${server.port}`, '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--spool', path.join(dir, 'spool')];
    const loose = await runCli([...args, '--http-token-file', file]);
    expect(loose.code).toBe(2);
    expect(loose.stderr).toMatch(/HTTP token file .* has mode 644.*chmod 600/);
    const flag = await runCli([...args, '--http-token', TOKEN]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/no --http-token flag/);
    expect(flag.stderr).not.toContain(TOKEN);

    await chmod(file, 0o600);
    const fromFile = await spawnRelay([...args, '--http-token-file', file]);
    expect((await httpCall(fromFile.httpPort!, 'POST', '/flush', { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    fromFile.child.kill('SIGTERM');
    await fromFile.exited;
    const envToken = 'Env-T0ken-abcdefghijklmnop';
    const fromEnv = await spawnRelay(args, { SLUICE_RELAY_HTTP_TOKEN: envToken });
    expect((await httpCall(fromEnv.httpPort!, 'POST', '/flush', { authorization: `Bearer ${TOKEN}` })).status).toBe(401);
    expect((await httpCall(fromEnv.httpPort!, 'POST', '/flush', { authorization: `Bearer ${envToken}` })).status).toBe(200);
    expect(fromEnv.stdout.join('\n')).not.toContain(envToken);
    fromEnv.child.kill('SIGTERM');
    await fromEnv.exited;
  });
});

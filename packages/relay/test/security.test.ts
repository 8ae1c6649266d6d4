import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RelayConfigError, startRelay } from '../src/index.js';
import { runCli } from './cli-helpers.js';
import { legacySender, rawSmtp, relayTo, selfSigned, tmpDir, upstream } from './helpers.js';

describe('bad input', () => {
  it('refuses an oversized message with 552, both by SIZE= and by content', async () => {
    const server = await upstream();
    const { relay, spoolDir } = await relayTo(server, { maxSize: 1000 });
    const c = await rawSmtp(relay.port);
    expect(await c.cmd('EHLO app.example.com')).toMatch(/SIZE 1000/);
    expect(await c.cmd('MAIL FROM:<a@example.com> SIZE=5000')).toMatch(/^552/);
    expect(await c.cmd('MAIL FROM:<a@example.com>')).toMatch(/^250/);
    expect(await c.cmd('RCPT TO:<b@example.com>')).toMatch(/^250/);
    expect(await c.cmd('DATA')).toMatch(/^354/);
    expect(await c.cmd(`Subject: big\r\n\r\n${'x'.repeat(3000)}\r\n.`)).toMatch(/^552/);
    // The session goes on.
    expect(await c.cmd('MAIL FROM:<a@example.com>')).toMatch(/^250/);
    expect(await c.cmd('RCPT TO:<b@example.com>')).toMatch(/^250/);
    expect(await c.cmd('DATA')).toMatch(/^354/);
    expect(await c.cmd('Subject: small\r\n\r\nok\r\n.')).toMatch(/^250/);
    await server.inbox.waitFor(1);
    await relay.idle(5000);
    expect(server.inbox.messages).toHaveLength(1);
    expect(await relay.metrics()).toMatch(/sluice_relay_messages_refused_size_total 2\n|sluice_relay_messages_refused_size_total 1\n/);
    expect(await readFile(path.join(spoolDir, 'tmp')).catch((e) => e.code)).toBe('EISDIR');
  });

  it('answers malformed commands with 5xx and keeps going', async () => {
    const server = await upstream();
    const { relay } = await relayTo(server);
    const c = await rawSmtp(relay.port);
    expect(c.greeting).toMatch(/^220 /);
    expect(await c.cmd('FOO bar')).toMatch(/^5\d\d/);
    expect(await c.cmd('EHLO app.example.com')).toMatch(/^250/);
    expect(await c.cmd('RCPT TO:<b@example.com>')).toMatch(/^503/);
    expect(await c.cmd('MAIL FROM:not-an-address')).toMatch(/^501/);
    expect(await c.cmd('MAIL FROM:<a@example.com>')).toMatch(/^250/);
    expect(await c.cmd('RCPT TO:<>')).toMatch(/^5\d\d/);
    expect(await c.cmd('DATA')).toMatch(/^503/);
    expect(await c.cmd('QUIT')).toMatch(/^221/);
  });
});

describe('lines over 998 octets (RFC 5321 §4.5.3.1.6)', () => {
  it('refuses the message at DATA time with 554 5.6.0, queues nothing, and the session goes on', async () => {
    const server = await upstream();
    const { relay, spoolDir } = await relayTo(server);
    const c = await rawSmtp(relay.port);
    await c.cmd('EHLO app.example.com');
    expect(await c.cmd('MAIL FROM:<a@example.com>')).toMatch(/^250/);
    expect(await c.cmd('RCPT TO:<b@example.com>')).toMatch(/^250/);
    expect(await c.cmd('DATA')).toMatch(/^354/);
    const reply = await c.cmd(`Subject: long\r\n\r\nshort\r\n${'x'.repeat(999)}\r\n.`);
    expect(reply).toMatch(/^554 5\.6\.0 Line 4 is longer than 998 octets/);
    expect(await c.cmd('MAIL FROM:<a@example.com>')).toMatch(/^250/);
    expect(await c.cmd('RCPT TO:<b@example.com>')).toMatch(/^250/);
    expect(await c.cmd('DATA')).toMatch(/^354/);
    expect(await c.cmd(`Subject: edge\r\n\r\n${'y'.repeat(998)}\r\n.`)).toMatch(/^250/);
    const [delivered] = await server.inbox.waitFor(1);
    expect(delivered!.raw!.toString('latin1').split('\r\n')).toContain('y'.repeat(998));
    await relay.idle(5000);
    expect(server.inbox.messages).toHaveLength(1);
    expect(await relay.metrics()).toMatch(/^sluice_relay_messages_refused_line_length_total 1$/m);
    expect(await readdir(path.join(spoolDir, 'tmp'))).toEqual([]);
  });
});

describe('who may relay', () => {
  it('refuses to listen beyond loopback without STARTTLS and AUTH', async () => {
    const spoolDir = await tmpDir();
    await expect(startRelay({ host: '0.0.0.0', port: 0, http: false, spoolDir, upstream: { url: 'smtp://127.0.0.1:1' } })).rejects.toThrow(RelayConfigError);
    await expect(startRelay({ host: '0.0.0.0', port: 0, http: false, spoolDir, upstream: { url: 'smtp://127.0.0.1:1' } })).rejects.toThrow(/STARTTLS.*AUTH/);
    const cli = await runCli(['--listen', '0.0.0.0:0', '--upstream', 'smtp://127.0.0.1:1', '--spool', spoolDir, '--http', 'off']);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/Refusing to listen on 0\.0\.0\.0.*STARTTLS.*AUTH/);
  });

  it('requires AUTH (over TLS) when so configured, on loopback too', async () => {
    const server = await upstream();
    const tls = await selfSigned();
    const { relay, log } = await relayTo(server, { tls: { key: tls.key, cert: tls.cert }, users: { app: 'local-Secret-1' }, requireAuth: true });
    const c = await rawSmtp(relay.port);
    await c.cmd('EHLO app.example.com');
    expect(await c.cmd('MAIL FROM:<a@example.com>')).toMatch(/^530/);
    expect(await c.cmd('AUTH PLAIN AGFwcABsb2NhbC1TZWNyZXQtMQ==')).toMatch(/^5\d\d/); // not before STARTTLS
    const bad = legacySender(relay.port, { ignoreTLS: false, requireTLS: true, tls: { ca: tls.cert }, auth: { user: 'app', pass: 'wrong-Secret-2' } });
    await expect(bad.sendMail({ from: 'a@example.com', to: 'b@example.com', text: 'x' })).rejects.toThrow(/535|Invalid login/);
    const good = legacySender(relay.port, { ignoreTLS: false, requireTLS: true, tls: { ca: tls.cert }, auth: { user: 'app', pass: 'local-Secret-1' } });
    await good.sendMail({ from: 'a@example.com', to: 'b@example.com', subject: 'authed', text: 'x' });
    await server.inbox.waitFor(1);
    expect(log.text()).not.toContain('local-Secret-1');
    expect(log.text()).not.toContain('wrong-Secret-2');
    expect(log.text()).toContain('local AUTH failed');
  });

  const external = Object.values(os.networkInterfaces())
    .flat()
    .find((i) => i && !i.internal && i.family === 'IPv4')?.address;
  it.skipIf(!external)('refuses a relay attempt from a non-loopback address without AUTH, and lets loopback through', async () => {
    const server = await upstream();
    const tls = await selfSigned();
    const { relay } = await relayTo(server, { host: '0.0.0.0', tls: { key: tls.key, cert: tls.cert }, users: { app: 'pw-123456' } });
    const remote = await rawSmtp(relay.port, external!);
    await remote.cmd('EHLO remote.example.com');
    expect(await remote.cmd('MAIL FROM:<a@example.com>')).toMatch(/^530 .*STARTTLS/);
    const local = await rawSmtp(relay.port, '127.0.0.1');
    await local.cmd('EHLO local.example.com');
    expect(await local.cmd('MAIL FROM:<a@example.com>')).toMatch(/^250/);
    // With TLS but without AUTH, still refused.
    const tlsRemote = legacySender(relay.port, { host: external, ignoreTLS: false, requireTLS: true, tls: { ca: tls.cert, servername: 'localhost' } });
    await expect(tlsRemote.sendMail({ from: 'a@example.com', to: 'b@example.com', text: 'x' })).rejects.toThrow(/530|Authentication required/);
    expect(await relay.metrics()).toMatch(/sluice_relay_messages_refused_unauthenticated_total 1\n/);
    const authed = legacySender(relay.port, {
      host: external,
      ignoreTLS: false,
      requireTLS: true,
      tls: { ca: tls.cert, servername: 'localhost' },
      auth: { user: 'app', pass: 'pw-123456' },
    });
    await authed.sendMail({ from: 'a@example.com', to: 'b@example.com', text: 'x' });
    await server.inbox.waitFor(1);
  });
});

describe('credentials', () => {
  it('refuses a password file others can read, a password in the URL, and a --password flag', async () => {
    const dir = await tmpDir();
    const file = path.join(dir, 'relay_auth');
    await writeFile(file, 'user:Secret-Pw-9\n');
    await chmod(file, 0o644);
    const base = ['--upstream', 'smtp://user@127.0.0.1:1', '--spool', dir, '--http', 'off', '--port', '0'];
    const loose = await runCli([...base, '--password-file', file]);
    expect(loose.code).toBe(2);
    expect(loose.stderr).toMatch(/mode 644.*chmod 600/);
    const inUrl = await runCli(['--upstream', 'smtp://user:Secret-Pw-9@127.0.0.1:1', '--spool', dir]);
    expect(inUrl.code).toBe(2);
    expect(inUrl.stderr).toMatch(/contains a password.*--password-file/);
    expect(inUrl.stderr).not.toContain('Secret-Pw-9');
    const flag = await runCli([...base, '--password', 'Secret-Pw-9']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/no --password flag/);
  });
});

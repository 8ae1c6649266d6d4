/**
 * docs/migrating-from-postfix.md, setting by setting: the seed's Postfix smarthost configuration
 * translated to sluice-relay flags, each checked against a real upstream (the mock server stands in
 * for smtp.socketlabs.com on its port).
 */
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnRelay } from './cli-helpers.js';
import { legacySender, tmpDir, upstream } from './helpers.js';

describe('migrating from the seed Postfix setup', () => {
  it('relayhost, smtp_sasl_auth_enable + smtp_sasl_password_maps (relay_auth as is), smtp_tls_security_level=encrypt, mynetworks, concurrency and recipient limits, smtp_helo_name', async () => {
    // relayhost = [smtp.socketlabs.com]:2525 — the mock server on its port, with the account's user.
    const server = await upstream({ users: { SMTPUsername: 'SMTPPassword' }, requireAuth: true, extensions: { starttls: true }, rtt: 20 });
    const dir = await tmpDir();
    // smtp_sasl_password_maps = hash:/etc/postfix/relay_auth — the seed's file, unchanged (postmap is not needed).
    const relayAuth = path.join(dir, 'relay_auth');
    await writeFile(relayAuth, `127.0.0.1 SMTPUsername:SMTPPassword\n[127.0.0.1]:${server.port} SMTPUsername:SMTPPassword\n`);
    await chmod(relayAuth, 0o600);
    const ca = path.join(dir, 'ca.pem');
    await writeFile(ca, server.ca);
    const relay = await spawnRelay([
      '--upstream',
      `smtp://127.0.0.1:${server.port}`, // relayhost = [host]:port (brackets: no MX lookup; sluice never looks up MX)
      '--password-file',
      relayAuth, // smtp_sasl_auth_enable = yes, smtp_sasl_password_maps = hash:/etc/postfix/relay_auth
      '--upstream-ca',
      ca,
      '--upstream-require-tls', // smtp_tls_security_level = encrypt
      '--trusted-networks',
      '127.0.0.1/32 [::1]/128', // mynetworks = 127.0.0.1/32 [::1]/128
      '--max-connections',
      '3', // default_destination_concurrency_limit = 3
      '--upstream-max-recipients',
      '2', // smtp_destination_recipient_limit = 2
      '--ehlo-name',
      'relay.example.com', // smtp_helo_name = relay.example.com
      '--listen',
      '127.0.0.1:0',
      '--http',
      'off',
      '--spool',
      path.join(dir, 'spool'),
    ]);

    // The port and AUTH: the upstream saw the account's user, over TLS.
    const sender = legacySender(relay.port, { localAddress: '127.0.0.1' });
    await sender.sendMail({
      from: 'app@example.com',
      to: ['a@example.com', 'b@example.com', 'c@example.com', 'd@example.com', 'e@example.com'],
      subject: 'many',
      text: 'x',
    });
    const parts = await server.inbox.waitFor(3);
    expect(parts.map((m) => m.user)).toEqual(['SMTPUsername', 'SMTPUsername', 'SMTPUsername']);
    expect(parts.every((m) => m.secure)).toBe(true);
    expect(parts.map((m) => m.helo)).toEqual(['relay.example.com', 'relay.example.com', 'relay.example.com']);
    // The recipient limit: five recipients in transactions of at most two.
    expect(parts.map((m) => m.to)).toEqual([['a@example.com', 'b@example.com'], ['c@example.com', 'd@example.com'], ['e@example.com']]);

    // mynetworks: 127.0.0.1 relays without AUTH, 127.0.0.2 (loopback, but not in the list) gets 530.
    const outsider = await legacySender(relay.port, { localAddress: '127.0.0.2' })
      .sendMail({ from: 'app@example.com', to: 'x@example.com', text: 'x' })
      .then(
        () => null,
        (err: { responseCode?: number }) => err,
      );
    expect(outsider?.responseCode).toBe(530);

    // The concurrency limit: 30 senders at once, never more than 3 upstream connections, and all 3 used.
    server.clear();
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        legacySender(relay.port).sendMail({ from: 'app@example.com', to: `r${i}@example.com`, subject: `n${i}`, text: 'x' }),
      ),
    );
    await server.inbox.waitFor(30, 20_000);
    expect(server.stats.peakConnections).toBe(3);
    relay.child.kill('SIGTERM');
    expect(await relay.exited).toBe(0);
  });
});

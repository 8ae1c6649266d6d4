import { describe, expect, it } from 'vitest';
import type { SluiceError } from '../src/index.js';
import { message, pool, server } from './helpers.js';

const users = { alice: 'secret' };

describe('TLS', () => {
  it('upgrades with STARTTLS, verifies the certificate, and says EHLO again', async () => {
    const s = await server({ extensions: { starttls: true } });
    const p = pool(s, { requireTLS: true });
    const connected = new Promise((resolve) => p.once('connect', resolve));
    await p.send(message(0));
    expect(await connected).toMatchObject({ encrypted: true });
    expect(s.inbox.messages[0]!.secure).toBe(true);
    expect(s.connections[0]!.byCommand.EHLO).toBe(2);
  });

  it('refuses a certificate it cannot verify (ETLS), and sends nothing', async () => {
    const s = await server({ extensions: { starttls: true } });
    const p = pool(s, { tls: {}, retry: false });
    const err = (await p.send(message(0)).catch((e) => e)) as SluiceError;
    expect(err.code).toBe('ETLS');
    expect(err.outcome).toBe('failed');
    expect(s.connections[0]!.byCommand.MAIL ?? 0).toBe(0);
  });

  it('sees a connection dropped under TLS at once, and requeues the message', async () => {
    const s = await server({ extensions: { starttls: true }, faults: [{ command: 'RCPT', action: 'drop', times: 1 }] });
    const p = pool(s); // default timeouts: minutes, so only a prompt close passes
    const result = await p.send(message(0));
    expect(result.attempts).toBe(2);
    expect(s.inbox.messages).toHaveLength(1);
  });

  it('speaks implicit TLS (secure: true)', async () => {
    const s = await server({ secure: true });
    const p = pool(s, { secure: true });
    await p.send(message(0));
    expect(s.inbox.messages[0]!.secure).toBe(true);
  });

  it('fails with ETLS when TLS is required and the server offers no STARTTLS', async () => {
    const s = await server({ extensions: { starttls: false } });
    const p = pool(s, { requireTLS: true });
    const err = (await p.send(message(0)).catch((e) => e)) as SluiceError;
    expect(err.code).toBe('ETLS');
    expect(s.connections[0]!.byCommand.MAIL ?? 0).toBe(0);
  });
});

describe('AUTH', () => {
  for (const method of ['PLAIN', 'LOGIN', 'CRAM-MD5'] as const) {
    it(`authenticates once per connection with ${method}`, async () => {
      const s = await server({ extensions: { starttls: true }, users });
      const p = pool(s, { auth: { user: 'alice', pass: 'secret' }, authMethod: method, maxConnections: 1 });
      await Promise.all([0, 1, 2].map((i) => p.send(message(i))));
      expect(s.inbox.messages.map((m) => m.user)).toEqual(['alice', 'alice', 'alice']);
      expect(s.connections[0]!.byCommand.AUTH).toBe(1);
    });
  }

  it('chooses PLAIN when the server offers it and nothing is forced', async () => {
    const s = await server({ extensions: { starttls: true, auth: ['LOGIN', 'PLAIN'] }, users });
    const p = pool(s, { auth: { user: 'alice', pass: 'secret' } });
    await p.send(message(0));
    expect(s.connections[0]!.byCommand.AUTH).toBe(1);
    expect(s.connections[0]!.commands).toBeLessThan(8);
  });

  it('authenticates with XOAUTH2 and refreshes a refused token once', async () => {
    const s = await server({ extensions: { starttls: true }, tokens: { alice: 'fresh-token' } });
    const calls: boolean[] = [];
    const p = pool(s, {
      auth: {
        user: 'alice',
        accessToken: 'stale-token',
        getAccessToken: ({ refresh }) => {
          calls.push(refresh);
          return 'fresh-token';
        },
      },
    });
    await p.send(message(0));
    expect(calls).toEqual([true]);
    expect(s.inbox.messages[0]!.user).toBe('alice');
  });

  it('fails with EAUTH, the reply code and the command, on bad credentials, and does not retry them', async () => {
    const s = await server({ extensions: { starttls: true }, users });
    const p = pool(s, { auth: { user: 'alice', pass: 'wrong' } });
    const err = (await p.send(message(0)).catch((e) => e)) as SluiceError;
    expect(err.code).toBe('EAUTH');
    expect(err.command).toBe('AUTH');
    expect(err.responseCode).toBe(535);
    expect(err.message).not.toContain('wrong');
    expect(s.connections).toHaveLength(1);
  });

  it('never sends credentials over a clear connection unless allowInsecureAuth', async () => {
    const s = await server({ extensions: { starttls: false }, users });
    const p = pool(s, { auth: { user: 'alice', pass: 'secret' } });
    const err = (await p.send(message(0)).catch((e) => e)) as SluiceError;
    expect(err.code).toBe('EAUTH');
    expect(s.connections[0]!.byCommand.AUTH ?? 0).toBe(0);

    const q = pool(s, { auth: { user: 'alice', pass: 'secret' }, allowInsecureAuth: true });
    await q.send(message(1));
    expect(s.inbox.messages[0]!.user).toBe('alice');
  });
});

import { describe, expect, it } from 'vitest';
import type { SluiceError } from '../src/index.js';
import { message, pool, server } from './helpers.js';

const users = { alice: 'secret' };
// RFC 3207 §4: 454 "TLS not available due to temporary reason" leaves the session as it was.
const refuseStartTls = [{ command: 'STARTTLS' as const, reply: '454 4.7.0 TLS not available' }];

describe('opportunisticTLS', () => {
  it('still upgrades when STARTTLS works', async () => {
    const s = await server({ extensions: { starttls: true } });
    const p = pool(s, { opportunisticTLS: true });
    await p.send(message(0));
    expect(s.inbox.messages[0]!.secure).toBe(true);
  });

  it('sends in clear when the server offers no STARTTLS (as without the option)', async () => {
    const s = await server({ extensions: { starttls: false } });
    const p = pool(s, { opportunisticTLS: true });
    await p.send(message(0));
    expect(s.inbox.messages[0]!.secure).toBe(false);
    expect(s.connections[0]!.byCommand.STARTTLS ?? 0).toBe(0);
  });

  it('goes on in clear when STARTTLS is refused, where without the option the send fails with ETLS', async () => {
    const s = await server({ extensions: { starttls: true }, faults: refuseStartTls });
    const strict = pool(s, { retry: false });
    const err = (await strict.send(message(0)).catch((e) => e)) as SluiceError;
    expect(err).toMatchObject({ code: 'ETLS', command: 'STARTTLS', responseCode: 454 });
    expect(s.inbox.messages).toHaveLength(0);

    const warnings: string[] = [];
    const p = pool(s, { opportunisticTLS: true, logger: { warn: (m) => warnings.push(m) } });
    await p.send(message(1));
    expect(s.inbox.messages).toHaveLength(1);
    expect(s.inbox.messages[0]!.secure).toBe(false);
    const connection = s.connections[1]!;
    expect(connection.byCommand.STARTTLS).toBe(1);
    expect(connection.byCommand.EHLO).toBe(1);
    expect(warnings.some((w) => /STARTTLS refused \(454\)/.test(w))).toBe(true);
  });

  it('never sends credentials in clear after a refused STARTTLS, unless allowInsecureAuth', async () => {
    const s = await server({ extensions: { starttls: true }, faults: refuseStartTls, users });
    const p = pool(s, { opportunisticTLS: true, auth: { user: 'alice', pass: 'secret' }, retry: false });
    const err = (await p.send(message(0)).catch((e) => e)) as SluiceError;
    expect(err).toMatchObject({ code: 'ETLS', command: 'STARTTLS', responseCode: 454 });
    expect(s.connections[0]!.byCommand.AUTH ?? 0).toBe(0);

    const q = pool(s, { opportunisticTLS: true, auth: { user: 'alice', pass: 'secret' }, allowInsecureAuth: true });
    await q.send(message(1));
    expect(s.inbox.messages[0]).toMatchObject({ user: 'alice', secure: false });
  });

  it('gives way to requireTLS', async () => {
    const s = await server({ extensions: { starttls: true }, faults: refuseStartTls });
    const p = pool(s, { opportunisticTLS: true, requireTLS: true, retry: false });
    const err = (await p.send(message(0)).catch((e) => e)) as SluiceError;
    expect(err.code).toBe('ETLS');
    expect(s.connections[0]!.byCommand.MAIL ?? 0).toBe(0);
  });

  it('does not cover a handshake that fails after the 220 (a certificate it cannot verify): ETLS, nothing sent in clear', async () => {
    const s = await server({ extensions: { starttls: true } });
    const p = pool(s, { opportunisticTLS: true, tls: {}, retry: false });
    const err = (await p.send(message(0)).catch((e) => e)) as SluiceError;
    expect(err).toMatchObject({ code: 'ETLS', command: 'STARTTLS', permanent: true });
    expect(s.connections[0]!.byCommand.MAIL ?? 0).toBe(0);
    expect(s.inbox.messages).toHaveLength(0);
  });
});

import { describe, expect, it } from 'vitest';
import { message, pool, server } from './helpers.js';

describe('connection setup', () => {
  it('falls back to HELO when EHLO is not recognised, and then sends in lock-step without extensions', async () => {
    const s = await server({ faults: [{ command: 'EHLO', reply: '502 5.5.2 Command not recognized' }] });
    const p = pool(s);
    const v = await p.verify();
    expect(v.capabilities).toMatchObject({ esmtp: false, pipelining: false, chunking: false, size: null });
    await p.send(message(0));
    const m = s.inbox.messages[0]!;
    expect(m.via).toBe('DATA');
    expect(m.mailParams).toEqual({});
    const c = s.connections[s.connections.length - 1]!;
    expect(c.byCommand.HELO).toBe(1);
    // Lock-step: MAIL, RCPT, DATA and the content each in a read of their own, after HELO's.
    expect(c.reads).toBe(1 + 1 + 4);
  });

  it('does not fall back to HELO on a 4xx to EHLO: the attempt fails as transient and is retried', async () => {
    const s = await server({ faults: [{ command: 'EHLO', reply: '451 4.3.0 Try again later', times: 1 }] });
    const p = pool(s);
    const result = await p.send(message(0));
    expect(result.outcome).toBe('delivered');
    expect(s.connections.every((c) => (c.byCommand.HELO ?? 0) === 0)).toBe(true);
    expect(s.inbox.messages[0]!.via).toBe('BDAT');
  });

  it.each(['500 5.5.1 Unrecognized command', '504 5.5.4 Command parameter not implemented'])('falls back to HELO on %j too', async (reply) => {
    const s = await server({ faults: [{ command: 'EHLO', reply }] });
    const p = pool(s);
    await p.send(message(0));
    expect(s.connections[0]!.byCommand.HELO).toBe(1);
  });

  it('does not fall back to HELO on another 5xx to EHLO (554 "no service"): verify fails with the reply, and no HELO is sent', async () => {
    const s = await server({ faults: [{ command: 'EHLO', reply: '554 5.7.1 No SMTP service for you' }] });
    const p = pool(s, { retry: false });
    const err = await p.verify().then(
      () => null,
      (e) => e,
    );
    expect(err).toMatchObject({ code: 'ECONNECTION', command: 'EHLO', responseCode: 554, enhancedCode: '5.7.1', permanent: true });
    expect(s.connections[0]!.byCommand.HELO ?? 0).toBe(0);
  });
});

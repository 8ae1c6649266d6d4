import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MockServer, startMockServer } from '../src/index.js';
import { findBinary, run } from './helpers.js';

// swaks (Swiss Army Knife for SMTP, Perl) is an independent client. CI installs it; locally the
// tests are skipped, loudly, when it is absent.
const swaks = findBinary('swaks');
const missing = !swaks;
const why = 'swaks is not installed (apt-get install swaks)';

let server: MockServer;
let secure: MockServer;
beforeAll(async () => {
  server = await startMockServer({ users: { alice: 'secret' } });
  secure = await startMockServer({ secure: true, users: { alice: 'secret' } });
});
afterAll(async () => {
  await server.close();
  await secure.close();
});
beforeEach(() => {
  server.clear();
  secure.clear();
});

const base = (port: number) => [
  '--server',
  `127.0.0.1:${port}`,
  '--from',
  'sender@example.com',
  '--to',
  'one@example.com,two@example.com',
  '--helo',
  'swaks.test',
];

describe.skipIf(missing)(`swaks${missing ? ` (skipped: ${why})` : ''}`, () => {
  it('delivers with --pipeline: envelope and DATA in one write, one read on the server', async () => {
    const result = await run(swaks as string, [...base(server.port), '--pipeline', '--body', 'Hello from swaks\n.dot line']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const [m] = await server.inbox.waitFor(1);
    expect(m.to).toEqual(['one@example.com', 'two@example.com']);
    expect(m.raw?.toString()).toContain('\r\nHello from swaks\r\n.dot line\r\n');
    const conn = server.connections[0];
    expect(conn.byCommand).toMatchObject({ EHLO: 1, MAIL: 1, RCPT: 2, DATA: 1, QUIT: 1 });
    // greeting wait, EHLO, MAIL+RCPT+RCPT+DATA, content, QUIT: the envelope cost one read.
    expect(conn.reads).toBeLessThanOrEqual(4);
  });

  it('delivers without pipelining, one command per round trip', async () => {
    const result = await run(swaks as string, [...base(server.port), '--body', 'lock-step']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    await server.inbox.waitFor(1);
    expect(server.connections[0].reads).toBeGreaterThanOrEqual(6);
  });

  it.each(['PLAIN', 'LOGIN', 'CRAM-MD5'])('authenticates with AUTH %s after STARTTLS', async (mechanism) => {
    const result = await run(swaks as string, [...base(server.port), '--tls', '--auth', mechanism, '--auth-user', 'alice', '--auth-password', 'secret']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const [m] = await server.inbox.waitFor(1);
    expect(m).toMatchObject({ user: 'alice', secure: true });
  });

  it('fails with a wrong password', async () => {
    const result = await run(swaks as string, [...base(server.port), '--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 'nope']);
    expect(result.code).not.toBe(0);
    expect(result.stdout).toContain('535 5.7.8');
    expect(server.inbox.messages).toHaveLength(0);
  });

  it('speaks implicit TLS (--tls-on-connect)', async () => {
    const result = await run(swaks as string, [...base(secure.port), '--tls-on-connect']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const [m] = await secure.inbox.waitFor(1);
    expect(m.secure).toBe(true);
  });

  it('reports the fault reply the server was told to give', async () => {
    server.setFaults([{ command: 'RCPT', recipient: 'two@example.com', reply: '550 5.1.1 No such user' }]);
    const result = await run(swaks as string, [...base(server.port), '--pipeline']);
    expect(result.stdout).toContain('550 5.1.1 No such user');
    const [m] = await server.inbox.waitFor(1);
    expect(m.to).toEqual(['one@example.com']);
  });
});

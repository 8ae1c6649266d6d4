import { tlsMockServer } from 'example-env/testing';
import { afterEach, expect, it, vi } from 'vitest';
import { start } from '../src/server.js';

afterEach(() => vi.restoreAllMocks());

const signup = (url: string) =>
  fetch(`${url}/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'ada@example.com', name: 'Ada' }) });

it('SMTP_TLS_CA makes a self-signed server trusted; without it the send fails with ETLS, logged with its code', async () => {
  const { mock, caFile, close } = await tlsMockServer();
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
  const env = { PORT: '0', SMTP_HOST: 'localhost', SMTP_PORT: String(mock.port) };
  const trusted = await start({ ...env, SMTP_TLS_CA: caFile });
  const untrusted = await start({ ...env });
  try {
    expect((await signup(trusted.url)).status).toBe(202);
    expect((await mock.inbox.waitFor(1))[0]!.secure).toBe(true);
    const refused = await signup(untrusted.url);
    expect(refused.status).toBe(500);
    expect(await refused.json()).toEqual({ error: { code: 'ETLS', kind: 'config', outcome: 'failed', message: 'The mail service is misconfigured' } });
    expect(warn.mock.calls.map((c) => String(c[0]))).toContainEqual(expect.stringMatching(/not sent: ETLS \(config, outcome failed\)/));
    expect(mock.inbox.messages).toHaveLength(1);
  } finally {
    await Promise.all([trusted.close(), untrusted.close()]);
    await close();
  }
});

it('SMTP_TLS_INSECURE skips certificate verification, and says so', async () => {
  const { mock, close } = await tlsMockServer();
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
  const running = await start({ PORT: '0', SMTP_HOST: 'localhost', SMTP_PORT: String(mock.port), SMTP_TLS_INSECURE: 'true' });
  try {
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('NOT verified. For development only'));
    expect((await signup(running.url)).status).toBe(202);
    expect((await mock.inbox.waitFor(1))[0]!.secure).toBe(true);
  } finally {
    await running.close();
    await close();
  }
});

it('refuses to start with an SMTP_TLS_CA that cannot be read', async () => {
  await expect(start({ PORT: '0', SMTP_HOST: 'localhost', SMTP_TLS_CA: '/nonexistent/ca.pem' })).rejects.toThrow(
    /SMTP_TLS_CA: cannot read the CA file \/nonexistent\/ca\.pem/,
  );
});

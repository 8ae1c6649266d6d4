import { buildApp, isRunning, startThroughPnpm, tlsMockServer } from 'example-env/testing';
import { simpleParser } from 'mailparser';
import { beforeAll, expect, it, vi } from 'vitest';

beforeAll(() => buildApp('express-example'), 240_000);

const signup = (url: string, email: string) =>
  fetch(`${url}/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, name: 'Ada' }) });

// The built app, started as a user starts it (pnpm --filter express-example start), sending to a mock
// server started apart from it that offers STARTTLS with a self-signed certificate (SMTP_TLS_CA).
it('sends through a separate STARTTLS server with SMTP_TLS_CA, logs a failed send with its code, and stops on SIGTERM to pnpm', async () => {
  const { mock, caFile, close } = await tlsMockServer({ faults: [{ command: 'RCPT', recipient: 'gone@example.com', reply: '550 5.1.1 No such user' }] });
  const app = await startThroughPnpm('express-example', { SMTP_HOST: '127.0.0.1', SMTP_PORT: String(mock.port), SMTP_TLS_CA: caFile });
  try {
    expect((await signup(app.url, 'ada@example.com')).status).toBe(202);
    const [received] = await mock.inbox.waitFor(1);
    expect(received!.secure).toBe(true);
    expect((await simpleParser(received!.raw!)).subject).toBe('Welcome, Ada!');

    const refused = await signup(app.url, 'gone@example.com');
    expect(refused.status).toBe(422);
    expect(await refused.json()).toMatchObject({ error: { code: 'EENVELOPE', kind: 'refused', responseCode: 550 } });
    await vi.waitFor(() => expect(app.output()).toMatch(/not sent: EENVELOPE \(refused, outcome rejected, RCPT 550 5\.1\.1\)/));

    app.pnpm.kill('SIGTERM');
    await vi.waitFor(() => expect(isRunning(app.pid)).toBe(false), { timeout: 15_000, interval: 50 });
    expect(app.output()).toContain('SIGTERM: finishing requests and draining the mail pool');
  } finally {
    if (isRunning(app.pid)) process.kill(app.pid, 'SIGKILL');
    await close();
  }
});

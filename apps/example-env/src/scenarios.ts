import { simpleParser } from 'mailparser';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { buildApp, isRunning, startThroughPnpm, tlsMockServer } from './testing.js';

/** POST /signup { email, name: 'Ada' }: every example app has it, and answers 202 once the mail is delivered. */
export const signup = (url: string, email: string) =>
  fetch(`${url}/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, name: 'Ada' }) });

const REFUSED = { command: 'RCPT' as const, recipient: 'gone@example.com', reply: '550 5.1.1 No such user' };

/**
 * The built app, started as a user starts it (`pnpm --filter <app> start`), sending to a mock server
 * started apart from it that offers STARTTLS with a self-signed certificate (SMTP_TLS_CA): a delivered
 * mail over TLS, a refused one answered in the shared error shape and logged with its code, then
 * SIGTERM to pnpm stops the app itself (`sigtermLine` is what the app logs when it gets the signal).
 */
export async function builtAppThroughPnpm(name: string, sigtermLine: string | RegExp): Promise<void> {
  buildApp(name);
  const { mock, caFile, close } = await tlsMockServer({ faults: [REFUSED] });
  const app = await startThroughPnpm(name, { SMTP_HOST: '127.0.0.1', SMTP_PORT: String(mock.port), SMTP_TLS_CA: caFile });
  try {
    expect((await signup(app.url, 'ada@example.com')).status).toBe(202);
    const [received] = await mock.inbox.waitFor(1);
    expect(received!.secure).toBe(true);
    const parsed = await simpleParser(received!.raw!);
    expect(parsed.subject).toBe('Welcome, Ada!');
    expect(parsed.to && !Array.isArray(parsed.to) ? parsed.to.value.map((a) => a.address) : []).toEqual(['ada@example.com']);

    const refused = await signup(app.url, 'gone@example.com');
    expect(refused.status).toBe(422);
    expect(await refused.json()).toMatchObject({
      error: { code: 'EENVELOPE', kind: 'refused', outcome: 'rejected', responseCode: 550, enhancedCode: '5.1.1' },
    });
    await vi.waitFor(() => expect(app.output()).toMatch(/not sent: EENVELOPE \(refused, outcome rejected, RCPT 550 5\.1\.1\)/));

    app.pnpm.kill('SIGTERM');
    await vi.waitFor(() => expect(isRunning(app.pid)).toBe(false), { timeout: 15_000, interval: 50 });
    expect(app.output()).toMatch(sigtermLine);
  } finally {
    if (isRunning(app.pid)) process.kill(app.pid, 'SIGKILL');
    await close();
  }
}

export interface RunningApp {
  url: string;
  close(): Promise<void>;
}

/**
 * The tests of SMTP_TLS_CA and SMTP_TLS_INSECURE for an app that `start(env)` starts in this process.
 * `warnings()` returns what the app logged as warnings; by default, what it wrote with console.warn.
 */
export function tlsEnvTests(start: (env: Record<string, string>) => Promise<RunningApp>, options: { warnings?: () => string[] } = {}): void {
  let warned: () => string[];
  beforeEach(() => {
    vi.spyOn(console, 'error').mockImplementation(() => {});
    const spy = vi.spyOn(console, 'warn').mockImplementation(() => {});
    warned = options.warnings ?? (() => spy.mock.calls.map((call) => String(call[0])));
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('SMTP_TLS_CA makes a self-signed server trusted; without it the send fails with ETLS (500, config), logged with its code', async () => {
    const { mock, caFile, close } = await tlsMockServer();
    const env = { PORT: '0', SMTP_HOST: 'localhost', SMTP_PORT: String(mock.port) };
    const trusted = await start({ ...env, SMTP_TLS_CA: caFile });
    const untrusted = await start(env);
    try {
      expect((await signup(trusted.url, 'ada@example.com')).status).toBe(202);
      expect((await mock.inbox.waitFor(1))[0]!.secure).toBe(true);
      const refused = await signup(untrusted.url, 'ada@example.com');
      expect(refused.status).toBe(500);
      expect(await refused.json()).toEqual({ error: { code: 'ETLS', kind: 'config', outcome: 'failed', message: 'The mail service is misconfigured' } });
      expect(warned()).toContainEqual(expect.stringMatching(/not sent: ETLS \(config, outcome failed\)/));
      expect(mock.inbox.messages).toHaveLength(1);
    } finally {
      await Promise.all([trusted.close(), untrusted.close()]);
      await close();
    }
  });

  it('SMTP_TLS_INSECURE skips certificate verification, and says so', async () => {
    const { mock, close } = await tlsMockServer();
    const running = await start({ PORT: '0', SMTP_HOST: 'localhost', SMTP_PORT: String(mock.port), SMTP_TLS_INSECURE: 'true' });
    try {
      expect(warned()).toContainEqual(expect.stringContaining('NOT verified. For development only'));
      expect((await signup(running.url, 'ada@example.com')).status).toBe(202);
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
}

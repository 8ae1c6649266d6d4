import { existsSync } from 'node:fs';
import { type MockServer, startMockServer } from '@sluice/mock-server';
import { buildApp, isRunning, startThroughPnpm } from 'example-env/testing';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';

let mock: MockServer;
beforeAll(async () => {
  buildApp('nest-mailer-port');
  mock = await startMockServer({ extensions: { starttls: false } });
}, 300_000);
afterAll(() => mock?.close());

const register = (url: string, body: unknown) =>
  fetch(`${url}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

// The mail module of @nestjs-modules/mailer's documentation (forRootAsync with ConfigService, defaults,
// a Handlebars template), ported by changing the imports and the options, compiled with tsc (as `nest
// build` does) and run from dist/, where the templates were copied.
it('runs the ported app from dist: the template is found after the build, defaults.from applies, ConfigService supplies the server', async () => {
  expect(existsSync(new URL('../dist/mail/templates/confirmation.hbs', import.meta.url))).toBe(true);
  const app = await startThroughPnpm('nest-mailer-port', { MAIL_HOST: mock.host, MAIL_PORT: String(mock.port), MAIL_FROM: 'noreply@example.com' });
  try {
    expect((await register(app.url, { email: 'ada@example.com', name: 'Ada <Lovelace>' })).status).toBe(202);
    const [received] = await mock.inbox.waitFor(1);
    expect(received!.from).toBe('noreply@example.com');
    const parsed = await simpleParser(received!.raw!);
    expect(parsed.from?.value).toEqual([{ name: 'No Reply', address: 'noreply@example.com' }]);
    expect(parsed.to && !Array.isArray(parsed.to) ? parsed.to.value : []).toEqual([{ name: '', address: 'ada@example.com' }]);
    expect(parsed.subject).toBe('Welcome to Nice App! Confirm your Email');
    const html = String(parsed.html);
    expect(html).toContain('<p>Hey Ada &lt;Lovelace&gt;,</p>');
    // Handlebars escapes "=" in {{ url }} (as with @nestjs-modules/mailer); a browser reads it as "=".
    expect(html).toMatch(/<a href="example\.com\/auth\/confirm\?token&#x3D;[0-9a-f]{32}">Confirm<\/a>/);

    app.pnpm.kill('SIGTERM');
    await vi.waitFor(() => expect(isRunning(app.pid)).toBe(false), { timeout: 15_000, interval: 50 });
    expect(mock.inbox.messages).toHaveLength(1);
  } finally {
    if (isRunning(app.pid)) process.kill(app.pid, 'SIGKILL');
  }
}, 60_000);

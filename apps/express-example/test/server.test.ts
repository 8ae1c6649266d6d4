import { startMockServer } from '@sluice/mock-server';
import { describe, expect, it, vi } from 'vitest';
import { start } from '../src/server.js';

async function post(url: string, body: unknown) {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

describe('start()', () => {
  it('runs on the embedded mock server by default, and close() drains the mail in flight before stopping', async () => {
    const running = await start({ PORT: '0', MOCK_RTT: '5' });
    expect(running.mock).not.toBeNull();
    expect(running.smtp).toContain('embedded mock server');
    const health = await fetch(`${running.url}/health`);
    expect(health.status).toBe(200);

    const bulk = post(`${running.url}/bulk`, { count: 200 });
    // Close only once the request is in (the mail is queued or on the wire): a fixed sleep raced the
    // HTTP connect on a loaded machine, and close() then refused the request itself.
    await vi.waitFor(() => expect(running.mailer.stats.queued + running.mailer.stats.inFlight).toBeGreaterThan(0), { timeout: 5000, interval: 2 });
    const started = Date.now();
    const closed = running.close(); // like SIGTERM in main.ts
    expect((await bulk).body).toMatchObject({ delivered: 200 });
    await closed;
    expect(Date.now() - started).toBeLessThan(2000); // no wait for keep-alive connections to time out
    expect(running.mock!.inbox.messages).toHaveLength(200);
    expect(running.mailer.stats.connections).toBe(0);
    await expect(fetch(`${running.url}/health`)).rejects.toThrow();
  });

  it('sends through SMTP_HOST and SMTP_PORT when set', async () => {
    const smtp = await startMockServer({ extensions: { starttls: false } });
    const running = await start({ PORT: '0', SMTP_HOST: smtp.host, SMTP_PORT: String(smtp.port), MAIL_FROM: 'team@example.org' });
    try {
      expect(running.mock).toBeNull();
      expect(running.smtp).toBe(`smtp://${smtp.host}:${smtp.port}`);
      const res = await post(`${running.url}/signup`, { email: 'grace@example.com', name: 'Grace' });
      expect(res.status).toBe(202);
      const [received] = await smtp.inbox.waitFor(1);
      expect(received.from).toBe('team@example.org');
      expect(received.to).toEqual(['grace@example.com']);
    } finally {
      await running.close();
      await smtp.close();
    }
  });

  it("verifies the SMTP server's certificate: a self-signed one is refused, and the health route says so", async () => {
    const smtp = await startMockServer({ requireTLS: true, users: { app: 's3cret' } });
    const running = await start({ PORT: '0', SMTP_HOST: 'localhost', SMTP_PORT: String(smtp.port), SMTP_USER: 'app', SMTP_PASS: 's3cret' });
    try {
      const res = await fetch(`${running.url}/health`);
      expect(res.status).toBe(503);
      const body = await res.json();
      expect(body).toMatchObject({ status: 'down', error: 'ETLS' });
      expect(JSON.stringify(body)).not.toContain('s3cret');
    } finally {
      await running.close();
      await smtp.close();
    }
  });
});

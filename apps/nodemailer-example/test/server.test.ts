import { startMockServer } from '@sluice/mock-server';
import { describe, expect, it, vi } from 'vitest';
import { start } from '../src/server.js';

const post = (url: string, body: unknown) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('start()', () => {
  it('runs on the embedded mock server by default, and stops gracefully', async () => {
    const running = await start({ PORT: '0', HOST: '127.0.0.1', MOCK_RTT: '0', MAIL_FROM: 'hello@example.com' });
    expect(running.mock).not.toBeNull();
    expect(running.description).toMatch(/embedded mock server/);
    const res = await post(`${running.url}/signup`, { email: 'ada@example.com', name: 'Ada' });
    expect(res.status).toBe(202);
    const { messageId } = (await res.json()) as { messageId: string };
    const [m] = running.mock!.inbox.messages;
    expect(m!.from).toBe('hello@example.com');
    expect(m!.raw!.toString()).toContain(`Message-ID: ${messageId}`);
    await running.close();
    await vi.waitFor(() => expect(running.mock!.openConnections).toBe(0), { timeout: 5000 });
    await expect(running.transporter.sendMail({ from: 'a@example.com', to: 'b@example.com', text: 'late' })).rejects.toMatchObject({ code: 'ECLOSED' });
    await expect(fetch(`${running.url}/signup`)).rejects.toThrow();
  });

  it('on shutdown, finishes the request in progress and drains its mail before stopping', async () => {
    const running = await start({ PORT: '0', HOST: '127.0.0.1', MOCK_RTT: '20' });
    const bulk = post(`${running.url}/bulk`, { count: 200 });
    // Close only once the request is in and its mail is on the wire (a fixed sleep raced the HTTP
    // connect on a loaded machine, and close() then refused the request itself).
    await vi.waitFor(() => expect(running.mock!.connections.length).toBeGreaterThan(0), { timeout: 5000, interval: 2 });
    expect(running.mock!.inbox.messages.length).toBeLessThan(200);
    const closed = running.close();
    const res = await bulk;
    expect(await res.json()).toMatchObject({ delivered: 200, rejected: 0, failed: 0, unknown: 0 });
    await closed;
    expect(running.mock!.inbox.messages).toHaveLength(200);
  });

  it('uses the SMTP server from SMTP_HOST and SMTP_PORT when set', async () => {
    const external = await startMockServer({ extensions: { starttls: false } });
    const running = await start({ PORT: '0', HOST: '127.0.0.1', SMTP_HOST: external.host, SMTP_PORT: String(external.port) });
    expect(running.mock).toBeNull();
    expect(running.description).toBe(`${external.host}:${external.port}`);
    const res = await post(`${running.url}/bulk`, { count: 25 });
    expect(await res.json()).toMatchObject({ delivered: 25 });
    await running.close();
    expect(external.inbox.messages).toHaveLength(25);
    // The client closes each socket once QUIT is answered; the server sees those closes a moment later.
    await vi.waitFor(() => expect(external.openConnections).toBe(0), { timeout: 5000 });
    await external.close();
  });

  it('passes SMTP_USER and SMTP_PASS as credentials (refused here: never over a clear connection)', async () => {
    const external = await startMockServer({ extensions: { starttls: false }, users: { alice: 'secret' }, requireAuth: true });
    const running = await start({
      PORT: '0',
      HOST: '127.0.0.1',
      SMTP_HOST: external.host,
      SMTP_PORT: String(external.port),
      SMTP_USER: 'alice',
      SMTP_PASS: 'secret',
    });
    await expect(running.transporter.verify()).rejects.toMatchObject({ code: 'EAUTH' });
    await running.close();
    await external.close();
  });
});

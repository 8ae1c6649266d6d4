import nodemailer from 'nodemailer';
import { describe, expect, it } from 'vitest';
import { useMockServer } from '../src/vitest.js';

const smtp = useMockServer({ users: { alice: 'secret' } });

describe('useMockServer', () => {
  it('exposes the running server through getters', async () => {
    expect(smtp.host).toBe('127.0.0.1');
    expect(smtp.port).toBeGreaterThan(0);
    expect(smtp.url).toBe(`smtp://127.0.0.1:${smtp.port}`);
    expect(smtp.ca).toContain('BEGIN CERTIFICATE');
    const transport = nodemailer.createTransport({ host: smtp.host, port: smtp.port, ignoreTLS: true, auth: { user: 'alice', pass: 'secret' } });
    await transport.sendMail({ from: 'a@example.com', to: 'b@example.com', text: 'hi' });
    transport.close();
    expect(await smtp.inbox.waitFor(1)).toHaveLength(1);
    // Changes made in a test...
    smtp.server.setFaults([{ command: 'MAIL', reply: '451 4.3.0 later' }]);
    smtp.server.configure({ extensions: { chunking: false } });
  });

  it('starts every test from the initial state', async () => {
    // ...are gone in the next one.
    expect(smtp.inbox.messages).toHaveLength(0);
    expect(smtp.connections).toHaveLength(0);
    const transport = nodemailer.createTransport({ host: smtp.host, port: smtp.port, ignoreTLS: true, auth: { user: 'alice', pass: 'secret' } });
    await transport.sendMail({ from: 'a@example.com', to: 'b@example.com', text: 'hi' });
    transport.close();
    const [m] = await smtp.inbox.waitFor(1);
    expect(m.sequence).toBe(1);
  });
});

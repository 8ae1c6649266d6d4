import nodemailer from 'nodemailer';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type MockServer, startMockServer } from '../src/index.js';
import { RawClient } from './helpers.js';

// Behaviour tests of the simulator, not speed tests: the bounds are wide on purpose (a loaded
// 2-core CI machine adds tens of milliseconds here and there).
const RTT = 100;

let server: MockServer;
beforeAll(async () => {
  server = await startMockServer({ rtt: RTT });
});
afterAll(() => server.close());
afterEach(() => {
  server.reset?.();
});

const ms = (start: number) => performance.now() - start;

async function greeted(port: number): Promise<{ client: RawClient; elapsed: number }> {
  const start = performance.now();
  const client = await RawClient.connect(port);
  await client.reply();
  return { client, elapsed: ms(start) };
}

describe('simulated round-trip time', () => {
  it('delivers the greeting 1.5 rtt after connecting', async () => {
    const { client, elapsed } = await greeted(server.port);
    expect(elapsed).toBeGreaterThanOrEqual(1.5 * RTT - 5);
    expect(elapsed).toBeLessThan(1.5 * RTT + 150);
    client.close();
  });

  it('costs one rtt for a pipelined group and one rtt per command in lock-step', async () => {
    const { client } = await greeted(server.port);
    await client.command('EHLO client.test');
    const commands = ['MAIL FROM:<a@example.com>', 'RCPT TO:<b@example.com>', 'RCPT TO:<c@example.com>', 'RCPT TO:<d@example.com>', 'RSET'];

    let start = performance.now();
    client.write(commands.map((c) => `${c}\r\n`).join(''));
    await client.read(commands.length);
    const pipelined = ms(start);

    start = performance.now();
    for (const c of commands) await client.command(c);
    const lockStep = ms(start);

    expect(pipelined).toBeGreaterThanOrEqual(RTT - 5);
    expect(pipelined).toBeLessThan(RTT + 120);
    expect(lockStep).toBeGreaterThanOrEqual(commands.length * RTT - 5);
    expect(lockStep).toBeLessThan(commands.length * RTT + 400);
    client.close();
  });

  it('counts one server read per round trip', async () => {
    const { client } = await greeted(server.port);
    await client.command('EHLO client.test');
    const stats = server.connections[0];
    const before = stats.reads;
    // Three writes in quick succession travel together and arrive as one read.
    client.write('MAIL FROM:<a@example.com>\r\n');
    client.write('RCPT TO:<b@example.com>\r\n');
    client.write('DATA\r\n');
    const replies = await client.read(3);
    expect(replies.map((r) => r.code)).toEqual([250, 250, 354]);
    expect(stats.reads - before).toBe(1);
    client.close();
  });

  it('keeps byte order in both directions', async () => {
    const { client } = await greeted(server.port);
    let wire = 'EHLO client.test\r\n';
    for (let i = 0; i < 50; i++) wire += `NOOP ${i}\r\n`;
    // Written in many small pieces: order must survive the per-chunk delays.
    for (let i = 0; i < wire.length; i += 7) client.write(wire.slice(i, i + 7));
    const replies = await client.read(51);
    expect(replies[0].code).toBe(250);
    expect(replies.slice(1).every((r) => r.code === 250)).toBe(true);
    client.close();
  });

  it('applies rtt changes made with configure()', async () => {
    server.configure({ rtt: 0 });
    const fast = await greeted(server.port);
    expect(fast.elapsed).toBeLessThan(RTT);
    fast.client.close();
    server.configure({ rtt: 2 * RTT });
    const slow = await greeted(server.port);
    expect(slow.elapsed).toBeGreaterThanOrEqual(3 * RTT - 5);
    slow.client.close();
  });

  it('runs STARTTLS and a whole nodemailer send through the simulated path', async () => {
    const transport = nodemailer.createTransport({ host: 'localhost', port: server.port, requireTLS: true, tls: { ca: server.ca } });
    const start = performance.now();
    await transport.sendMail({ from: 'a@example.com', to: 'b@example.com', text: 'hi' });
    const elapsed = ms(start);
    // connect 1.5, EHLO 1, STARTTLS 1, TLS handshake >= 1, EHLO 1, envelope 1, content 1, ...
    expect(elapsed).toBeGreaterThanOrEqual(6 * RTT);
    const [m] = await server.inbox.waitFor(1);
    expect(m.secure).toBe(true);
    transport.close();
  });
});

describe('simulated bandwidth', () => {
  it('takes size / bandwidth to carry content', async () => {
    server.configure({ rtt: 0, bandwidth: 20_000 });
    const { client } = await greeted(server.port);
    await client.command('EHLO client.test');
    client.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
    await client.read(3);
    const start = performance.now();
    client.write(`${'x'.repeat(9_998)}\r\n.\r\n`);
    await client.reply();
    const elapsed = ms(start);
    // 10 KB at 20 KB/s: half a second.
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(1500);
    client.close();
  });
});

describe('rtt 0', () => {
  it('sets no timer on the hot path', async () => {
    const fast = await startMockServer();
    try {
      const client = await RawClient.connect(fast.port);
      await client.reply();
      await client.command('EHLO client.test');
      // Record where every setTimeout comes from while a DATA and a BDAT transaction run.
      const original = globalThis.setTimeout;
      const stacks: string[] = [];
      const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, delay?: number) => {
        stacks.push(new Error().stack ?? '');
        return original(fn, delay);
      }) as typeof setTimeout);
      try {
        client.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
        await client.read(3);
        client.write('hi\r\n.\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nBDAT 2 LAST\r\nhi');
        await client.read(4);
      } finally {
        spy.mockRestore();
      }
      // The test client's own waits show up; nothing from the server's sources.
      expect(stacks.some((s) => s.includes('helpers.ts'))).toBe(true);
      expect(stacks.filter((s) => /[/\\]src[/\\]\w+\.ts/.test(s))).toEqual([]);
      client.close();
    } finally {
      await fast.close();
    }
  });
});

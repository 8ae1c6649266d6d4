import { describe, expect, it } from 'vitest';
import { type ReceivedMessage, startMockServer } from '../src/index.js';
import { useMockServer } from '../src/vitest.js';
import { ehloClient, type RawClient } from './helpers.js';

// One server per file, reset before each test (the package's own vitest helper).
const smtp = useMockServer();

async function send(c: RawClient, to: string, body = 'x'): Promise<void> {
  c.write(`MAIL FROM:<a@example.com>\r\nRCPT TO:<${to}>\r\nDATA\r\n`);
  await c.read(3);
  c.write(`${body}\r\n.\r\n`);
  await c.reply();
}

describe('inbox', () => {
  it('waitFor resolves once enough messages arrived, filter selects', async () => {
    const waiting = smtp.server.inbox.waitFor(3);
    const c = await ehloClient(smtp.server.port);
    for (const to of ['x@one.test', 'y@two.test', 'z@one.test']) await send(c, to);
    const messages = await waiting;
    expect(messages.map((m) => m.to[0])).toEqual(['x@one.test', 'y@two.test', 'z@one.test']);
    expect(smtp.server.inbox.filter((m) => m.to[0].endsWith('@one.test'))).toHaveLength(2);
    expect(messages.map((m) => m.sequence)).toEqual([1, 2, 3]);
    c.close();
  });

  it('waitFor rejects after its timeout with what it saw', async () => {
    await expect(smtp.server.inbox.waitFor(1, 50)).rejects.toThrow('inbox.waitFor(1): 0 message(s) after 50 ms');
  });

  it('clear() empties the inbox and the stats and restarts the numbering', async () => {
    const c = await ehloClient(smtp.server.port);
    await send(c, 'a@x.test');
    const before = smtp.server.inbox.messages;
    expect(before).toHaveLength(1);
    smtp.server.clear();
    expect(smtp.server.inbox.messages).toHaveLength(0);
    expect(smtp.server.connections).toHaveLength(0);
    // A snapshot taken before keeps its content.
    expect(before).toHaveLength(1);
    await send(c, 'b@x.test');
    const [m] = await smtp.server.inbox.waitFor(1);
    expect(m.sequence).toBe(1);
    const d = await ehloClient(smtp.server.port);
    await send(d, 'c@x.test');
    expect((await smtp.server.inbox.waitFor(2))[1].connection).toBe(1);
    c.close();
    d.close();
  });

  it('keeps sizes but not bytes with record: false', async () => {
    smtp.server.configure({ record: false });
    const c = await ehloClient(smtp.server.port);
    await send(c, 'a@x.test', 'hello world');
    c.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nBDAT 5 LAST\r\nhello');
    await c.read(3);
    const [data, bdat] = await smtp.server.inbox.waitFor(2);
    expect(data).toMatchObject({ raw: null, size: 13, via: 'DATA' });
    expect(bdat).toMatchObject({ raw: null, size: 5, via: 'BDAT' });
    c.close();
  });

  it('trims to inboxLimit while waitFor still counts everything, and calls onMessage', async () => {
    const seen: ReceivedMessage[] = [];
    smtp.server.configure({ inboxLimit: 2, onMessage: (m) => seen.push(m) });
    const c = await ehloClient(smtp.server.port);
    for (let i = 0; i < 5; i++) await send(c, `${i}@x.test`);
    await smtp.server.inbox.waitFor(5);
    expect(smtp.server.inbox.messages.map((m) => m.to[0])).toEqual(['3@x.test', '4@x.test']);
    expect(seen.map((m) => m.to[0])).toEqual(['0@x.test', '1@x.test', '2@x.test', '3@x.test', '4@x.test']);
    c.close();
  });

  it('counts commands, replies, reads and writes per connection', async () => {
    const c = await ehloClient(smtp.server.port);
    c.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n');
    await c.read(4);
    c.write('x\r\n.\r\n');
    await c.reply();
    expect(smtp.server.connections[0]).toMatchObject({
      id: 1,
      reads: 3,
      writes: 4, // greeting, EHLO, the group, the queued reply
      commands: 5,
      replies: 7,
      byCommand: { EHLO: 1, MAIL: 1, RCPT: 2, DATA: 1 },
      transactions: 1,
      secure: false,
      closed: false,
    });
    expect(smtp.server.openConnections).toBe(1);
    c.close();
  });

  it('rejects pending waitFor calls when the server closes', async () => {
    const s = await startMockServer();
    const waiting = s.inbox.waitFor(1);
    await s.close();
    await expect(waiting).rejects.toThrow(/closed/);
  });
});

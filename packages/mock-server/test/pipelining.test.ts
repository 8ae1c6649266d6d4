import { describe, expect, it } from 'vitest';
import { useMockServer } from '../src/vitest.js';
import { ehloClient, RawClient, until } from './helpers.js';

// One server per file, reset before each test (the package's own vitest helper).
const smtp = useMockServer();

describe('PIPELINING (RFC 2920)', () => {
  it('answers a pipelined group with one write, read by the client at once', async () => {
    const c = await ehloClient(smtp.server.port);
    const stats = smtp.server.connections[0];
    const readsBefore = stats.reads;
    const writesBefore = stats.writes;
    const clientReadsBefore = c.reads;
    c.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nRCPT TO:<d@example.com>\r\nDATA\r\n');
    const replies = await c.read(5);
    expect(replies.map((r) => r.code)).toEqual([250, 250, 250, 250, 354]);
    expect(stats.reads - readsBefore).toBe(1);
    expect(stats.writes - writesBefore).toBe(1);
    expect(c.reads - clientReadsBefore).toBe(1);
    c.write('body\r\n.\r\n');
    await c.reply();
    expect(stats.byCommand).toMatchObject({ MAIL: 1, RCPT: 3, DATA: 1 });
    c.close();
  });

  it('pipelines across messages: end of content, next envelope and DATA in one write', async () => {
    const c = await ehloClient(smtp.server.port);
    const stats = smtp.server.connections[0];
    c.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
    await c.read(3);
    const writesBefore = stats.writes;
    for (let i = 0; i < 10; i++) {
      c.write(`message ${i}\r\n.\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n`);
      const replies = await c.read(4);
      expect(replies.map((r) => r.code)).toEqual([250, 250, 250, 354]);
    }
    expect(stats.writes - writesBefore).toBe(10);
    const messages = await smtp.server.inbox.waitFor(10);
    expect(messages.map((m) => m.raw?.toString())).toEqual(Array.from({ length: 10 }, (_, i) => `message ${i}\r\n`));
    c.close();
  });

  it('keeps replies in order when some commands in the group fail', async () => {
    const c = await ehloClient(smtp.server.port);
    c.write('RCPT TO:<b@example.com>\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<bad>\r\nRCPT TO:<b@example.com>\r\nNOOP\r\nRSET\r\nDATA\r\n');
    const replies = await c.read(7);
    expect(replies.map((r) => r.code)).toEqual([503, 250, 501, 250, 250, 250, 503]);
    c.close();
  });

  it('answers a group that ends with DATA when no recipient was accepted with 554 and no 354', async () => {
    smtp.server.setFaults([{ command: 'RCPT', reply: '550 5.1.1 No such user' }]);
    const c = await ehloClient(smtp.server.port);
    c.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
    expect((await c.read(3)).map((r) => r.code)).toEqual([250, 550, 554]);
    // The client sends no content; the session is still in command mode.
    expect((await c.command('RSET')).code).toBe(250);
    c.close();
  });

  it('handles a group split in the middle of a command line', async () => {
    const c = await ehloClient(smtp.server.port);
    const stats = smtp.server.connections[0];
    const before = stats.reads;
    c.write('MAIL FROM:<a@exa');
    await until(() => stats.reads > before);
    c.write('mple.com>\r\nRCPT TO:<b@example.com>\r\n');
    expect((await c.read(2)).map((r) => r.code)).toEqual([250, 250]);
    c.close();
  });

  it('reads a client that sends the whole session, QUIT included, in one write', async () => {
    const c = await RawClient.connect(smtp.server.port);
    await c.reply();
    c.write('EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
    await c.read(4);
    c.write('hi\r\n.\r\nQUIT\r\n');
    expect((await c.read(2)).map((r) => r.code)).toEqual([250, 221]);
    await c.waitClose();
    await smtp.server.inbox.waitFor(1);
  });

  it('accepts commands terminated by a bare LF', async () => {
    const c = await ehloClient(smtp.server.port);
    c.write('MAIL FROM:<a@example.com>\nRCPT TO:<b@example.com>\n');
    expect((await c.read(2)).map((r) => r.code)).toEqual([250, 250]);
    c.close();
  });
});

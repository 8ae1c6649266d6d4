import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MockServer, startMockServer } from '../src/index.js';
import { ehloClient, until } from './helpers.js';

let server: MockServer;
beforeAll(async () => {
  server = await startMockServer({ maxMessageSize: 1000 });
});
afterAll(() => server.close());
beforeEach(() => {
  server.setFaults([]);
  server.clear();
});

const ENVELOPE = 'MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n';

describe('CHUNKING / BDAT (RFC 3030)', () => {
  it('takes MAIL, RCPT, BDAT n LAST and the octets in one write', async () => {
    const c = await ehloClient(server.port);
    // Dots and bare LFs are content as-is: no stuffing with BDAT.
    const body = Buffer.from('Subject: x\r\n\r\n.\r\n..\nbinary\x00\xff\r\n', 'latin1');
    c.write(Buffer.concat([Buffer.from(`${ENVELOPE}BDAT ${body.length} LAST\r\n`), body]));
    const replies = await c.read(3);
    expect(replies.map((r) => r.code)).toEqual([250, 250, 250]);
    expect(replies[2].text).toMatch(/^2\.0\.0 Ok: queued as /);
    const [m] = await server.inbox.waitFor(1);
    expect(m.via).toBe('BDAT');
    expect(m.raw?.equals(body)).toBe(true);
    expect(m.size).toBe(body.length);
    c.close();
  });

  it('assembles several chunks, split anywhere across writes', async () => {
    const c = await ehloClient(server.port);
    c.write(`${ENVELOPE}BDAT 5\r\nHelloBDAT 7\r\n, world`);
    expect((await c.read(4)).map((r) => r.text)).toEqual(['2.1.0 Ok', '2.1.5 Ok', '2.0.0 5 octets received', '2.0.0 7 octets received']);
    // A chunk whose octets trickle in, and a zero-length LAST chunk.
    const stats = server.connections[0];
    const before = stats.reads;
    c.write('BDAT 3\r\n!');
    await until(() => stats.reads > before);
    c.write('\r\n');
    expect((await c.reply()).code).toBe(250);
    c.write('BDAT 0 LAST\r\n');
    expect((await c.reply()).text).toMatch(/queued as/);
    const [m] = await server.inbox.waitFor(1);
    expect(m.raw?.toString()).toBe('Hello, world!\r\n');
    c.close();
  });

  it('consumes the octets of a BDAT that gets an error, then reads commands again', async () => {
    const c = await ehloClient(server.port);
    // No transaction: 503, and the 10 octets (which look like a command) are skipped.
    c.write('BDAT 10 LAST\r\nNOOP\r\nNOOPNOOP\r\n');
    const [err, noop] = await c.read(2);
    expect(err).toMatchObject({ code: 503, enhanced: '5.5.1' });
    expect(noop.code).toBe(250);
    // No accepted recipient: 554, octets consumed.
    c.write('MAIL FROM:<a@example.com>\r\nBDAT 4 LAST\r\nQUITNOOP\r\n');
    const [mail, noRcpt, after] = await c.read(3);
    expect(mail.code).toBe(250);
    expect(noRcpt).toMatchObject({ code: 554, enhanced: '5.5.1' });
    expect(after.code).toBe(250);
    c.close();
  });

  it('answers 552 to a message over the limit after consuming it, and the transaction is over', async () => {
    const c = await ehloClient(server.port);
    const big = 'x'.repeat(800);
    c.write(`${ENVELOPE}BDAT 800\r\n${big}BDAT 800 LAST\r\n${big}RCPT TO:<c@example.com>\r\n`);
    const replies = await c.read(5);
    expect(replies.map((r) => r.code)).toEqual([250, 250, 250, 552, 503]);
    expect(replies[3].enhanced).toBe('5.3.4');
    expect(server.inbox.messages).toHaveLength(0);
    c.close();
  });

  it('refuses DATA inside a BDAT transaction', async () => {
    const c = await ehloClient(server.port);
    c.write(`${ENVELOPE}BDAT 2\r\nhiDATA\r\nBDAT 1 LAST\r\n!`);
    const replies = await c.read(5);
    expect(replies.map((r) => r.code)).toEqual([250, 250, 250, 503, 250]);
    const [m] = await server.inbox.waitFor(1);
    expect(m.raw?.toString()).toBe('hi!');
    c.close();
  });

  it('rejects malformed BDAT commands without consuming anything', async () => {
    const c = await ehloClient(server.port);
    for (const bad of ['BDAT', 'BDAT x', 'BDAT -1', 'BDAT 10 FIRST', 'BDAT 1 LAST extra']) {
      expect((await c.command(bad)).code, bad).toBe(501);
    }
    c.close();
  });

  it('pipelines many BDAT messages in one write', async () => {
    const c = await ehloClient(server.port);
    let wire = '';
    for (let i = 0; i < 20; i++) wire += `${ENVELOPE}BDAT 6 LAST\r\nmsg-${String(i).padStart(2, '0')}`;
    c.write(wire);
    await c.read(60);
    const messages = await server.inbox.waitFor(20);
    expect(messages.map((m) => m.raw?.toString())).toEqual(Array.from({ length: 20 }, (_, i) => `msg-${String(i).padStart(2, '0')}`));
    expect(server.connections[0].writes).toBeLessThanOrEqual(3);
    c.close();
  });
});

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mulberry32 } from '../src/faults.js';
import { type MockServer, startMockServer } from '../src/index.js';
import { ehloClient, RawClient, sleep } from './helpers.js';

let server: MockServer;
// Internal errors are reported as process warnings (and a 421); none may happen here.
const internalErrors: Error[] = [];
const onWarning = (warning: Error) => {
  if (warning.name === 'SluiceMockServerError') internalErrors.push(warning);
};
beforeAll(async () => {
  process.on('warning', onWarning);
  server = await startMockServer({ maxLineLength: 512 });
});
afterAll(async () => {
  process.off('warning', onWarning);
  await server.close();
});
beforeEach(() => {
  server.setFaults([]);
  server.clear();
});
afterEach(() => {
  expect(internalErrors).toEqual([]);
});

/** The server still greets and runs a transaction. */
async function alive(): Promise<void> {
  const c = await ehloClient(server.port);
  c.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
  expect((await c.read(3)).map((r) => r.code)).toEqual([250, 250, 354]);
  c.write('ok\r\n.\r\n');
  expect((await c.reply()).code).toBe(250);
  c.close();
}

describe('hostile input', () => {
  it('answers an overlong line with 500 5.5.2 and resyncs at the next line end', async () => {
    const c = await ehloClient(server.port);
    // Within one write.
    c.write(`NOOP ${'x'.repeat(600)}\r\nNOOP\r\n`);
    const [tooLong, noop] = await c.read(2);
    expect(tooLong).toMatchObject({ code: 500, enhanced: '5.5.2', text: '5.5.2 Line too long' });
    expect(noop.code).toBe(250);
    // Spread over writes, without a line end for a long time.
    for (let i = 0; i < 10; i++) {
      c.write('y'.repeat(200));
      await sleep(2);
    }
    expect((await c.reply()).text).toBe('5.5.2 Line too long');
    c.write('still the same line\r\nNOOP\r\n');
    expect((await c.reply()).code).toBe(250);
    expect(c.pending).toBe(0);
    c.close();
  });

  it('cuts off a client after more than 10 bad commands in a row with 421', async () => {
    const c = await ehloClient(server.port);
    c.write('BOGUS\r\n'.repeat(10));
    expect((await c.read(10)).every((r) => r.code === 500)).toBe(true);
    // A good command resets the count.
    expect((await c.command('NOOP')).code).toBe(250);
    c.write('BOGUS\r\n'.repeat(12));
    const replies = await c.read(11);
    expect(replies.slice(0, 10).every((r) => r.code === 500)).toBe(true);
    expect(replies[10]).toMatchObject({ code: 421, enhanced: '4.7.0' });
    await c.waitClose();
    await alive();
  });

  it('survives random bytes', async () => {
    const random = mulberry32(42);
    for (let round = 0; round < 20; round++) {
      const c = await RawClient.connect(server.port);
      await c.reply();
      const size = 1 + Math.floor(random() * 4000);
      const bytes = Buffer.alloc(size);
      for (let i = 0; i < size; i++) {
        // Biased towards CR, LF, dots and letters so that lines and states get exercised.
        const r = random();
        bytes[i] = r < 0.05 ? 13 : r < 0.1 ? 10 : r < 0.15 ? 46 : r < 0.5 ? 65 + Math.floor(random() * 26) : Math.floor(random() * 256);
      }
      c.write(bytes);
      await sleep(5);
      c.close();
    }
    await alive();
  });

  it('survives random sequences of real and broken commands, split at random points', async () => {
    const random = mulberry32(7);
    const pieces = [
      'EHLO x\r\n',
      'HELO\r\n',
      'MAIL FROM:<a@example.com>\r\n',
      'MAIL FROM:<a@example.com> SIZE=xyz\r\n',
      'MAIL TO:<a@example.com>\r\n',
      'RCPT TO:<b@example.com>\r\n',
      'RCPT TO:<>\r\n',
      'DATA\r\n',
      'hello\r\n.\r\n',
      'BDAT 5\r\nabcde',
      'BDAT 3 LAST\r\nxyz',
      'BDAT nope\r\n',
      'RSET\r\n',
      'NOOP\r\n',
      'AUTH PLAIN\r\n',
      '*\r\n',
      'STARTTLS\r\n',
      '\r\n',
      '\n',
      '.\r\n',
      '\x00\xff\xfe garbage\r\n',
    ];
    for (let round = 0; round < 30; round++) {
      const c = await RawClient.connect(server.port);
      await c.reply();
      let wire = '';
      const n = 1 + Math.floor(random() * 30);
      for (let i = 0; i < n; i++) wire += pieces[Math.floor(random() * pieces.length)];
      const bytes = Buffer.from(wire, 'latin1');
      let at = 0;
      while (at < bytes.length) {
        const step = 1 + Math.floor(random() * 40);
        c.write(bytes.subarray(at, at + step));
        at += step;
      }
      await sleep(5);
      c.close();
    }
    await alive();
  });

  it('survives clients that vanish mid-command, mid-DATA and mid-BDAT', async () => {
    for (const partial of ['MAIL FROM:<a@exa', 'DATA\r\nhalf a mess', 'BDAT 100 LAST\r\nonly some']) {
      const c = await ehloClient(server.port);
      c.write(`MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n${partial}`);
      await c.read(2);
      c.close();
    }
    await sleep(20);
    expect(server.inbox.messages).toHaveLength(0);
    await alive();
  });

  it('survives a client that half-closes after pipelining everything', async () => {
    const c = await RawClient.connect(server.port);
    await c.reply();
    c.write('EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nBDAT 2 LAST\r\nhiQUIT\r\n');
    (c.rawSocket as import('node:net').Socket).end();
    const replies = await c.read(5);
    expect(replies.map((r) => r.code)).toEqual([250, 250, 250, 250, 221]);
    await c.waitClose();
    expect((await server.inbox.waitFor(1))[0].raw?.toString()).toBe('hi');
  });
});

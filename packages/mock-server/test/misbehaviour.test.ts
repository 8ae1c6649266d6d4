import nodemailer from 'nodemailer';
import { describe, expect, it } from 'vitest';
import { startMockServer } from '../src/index.js';
import { ehloClient, RawClient, until, withServer } from './helpers.js';

const ENVELOPE = 'MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n';

describe('a concurrent-connection cap with its peak', () => {
  for (const [reply, enhanced] of [
    ['421 Too many concurrent SMTP connections', null],
    ['421 4.3.2 Too many connections, try later', '4.3.2'],
  ] as const) {
    it(`greets connections beyond the cap with ${JSON.stringify(reply)} and counts peak and refused`, () =>
      withServer({ maxConnections: 3, connectionLimitReply: reply }, async (server) => {
        const admitted = await Promise.all([0, 1, 2].map(() => ehloClient(server.port)));
        const extra = await RawClient.connect(server.port);
        const refusal = await extra.reply();
        expect(refusal).toMatchObject({ code: 421, enhanced, text: reply.slice(4) });
        await extra.waitClose();
        expect(server.stats).toEqual({ peakConnections: 3, refusedConnections: 1 });
        for (const c of admitted) c.close();
        await until(() => server.openConnections === 0);
        // The peak stays until clear(), which restarts it from what is open now (nothing).
        expect(server.stats.peakConnections).toBe(3);
        server.clear();
        expect(server.stats).toEqual({ peakConnections: 0, refusedConnections: 0 });
        const again = await ehloClient(server.port);
        expect(server.stats).toEqual({ peakConnections: 1, refusedConnections: 0 });
        again.close();
      }));
  }

  it('counts the peak without a cap too', () =>
    withServer({}, async (server) => {
      const clients = await Promise.all([0, 1, 2, 3, 4].map(() => ehloClient(server.port)));
      clients[0].close();
      await until(() => server.openConnections === 4);
      const late = await ehloClient(server.port);
      expect(server.stats).toEqual({ peakConnections: 5, refusedConnections: 0 });
      for (const c of [...clients, late]) c.close();
    }));

  it('refuses a reply that is not an error, or not a reply', async () => {
    await expect(startMockServer({ connectionLimitReply: '220 welcome' })).rejects.toMatchObject({ code: 'EMOCKOPTIONS' });
    await expect(startMockServer({ tooManyRecipientsReply: 'too many' })).rejects.toMatchObject({ code: 'EMOCKOPTIONS' });
  });

  it('refuses an option it does not know (a misspelt one would otherwise be ignored)', async () => {
    const err = await startMockServer({ latency: 20 } as never).then(
      () => null,
      (e: Error & { code?: string }) => e,
    );
    expect(err).toMatchObject({ code: 'EMOCKOPTIONS' });
    expect(err!.message).toContain('"latency"');
  });
});

describe('a server that never greets', () => {
  it('accepts TCP on every connection and never sends a byte (CONNECT stall)', () =>
    withServer(
      {
        // The stall rule has no condition: every connection is stalled. The first rule only makes the
        // 4th connection a control that is greeted, so the test waits for an event, not a delay.
        faults: [
          { command: 'CONNECT', connection: 4, reply: '220 control greeting' },
          { command: 'CONNECT', action: 'stall' },
        ],
      },
      async (server) => {
        const silent = await Promise.all([0, 1, 2].map(() => RawClient.connect(server.port)));
        for (const c of silent) c.write('EHLO client.test\r\n');
        await until(() => server.connections.length === 3);
        const control = await RawClient.connect(server.port);
        // Greetings leave in accept order on loopback: once the later one arrived, earlier ones would have.
        expect(await control.reply()).toMatchObject({ code: 220, text: 'control greeting' });
        expect(server.connections.slice(0, 3).map((s) => [s.replies, s.commands, s.closed])).toEqual([
          [0, 0, false],
          [0, 0, false],
          [0, 0, false],
        ]);
        expect(silent.map((c) => [c.reads, c.pending, c.closed])).toEqual([
          [0, 0, false],
          [0, 0, false],
          [0, 0, false],
        ]);
        for (const c of [...silent, control]) c.close();
      },
    ));
});

describe('forbidPipeliningAfterData (anti-smuggling, like Haraka)', () => {
  it('accepts the "." and answers what came in the same read with 503 5.5.0, unexecuted', () =>
    withServer({ forbidPipeliningAfterData: true }, async (server) => {
      const c = await ehloClient(server.port);
      c.write(`${ENVELOPE}DATA\r\n`);
      expect((await c.read(3)).map((r) => r.code)).toEqual([250, 250, 354]);
      c.write(`Subject: one\r\n\r\nbody\r\n.\r\n${ENVELOPE}`);
      const [dot, mail, rcpt] = await c.read(3);
      expect(dot).toMatchObject({ code: 250, enhanced: '2.0.0' });
      expect(mail).toMatchObject({ code: 503, enhanced: '5.5.0', text: '5.5.0 Error: command pipelined after end of DATA' });
      expect(rcpt).toMatchObject({ code: 503, enhanced: '5.5.0' });
      expect(server.inbox.messages).toHaveLength(1);
      // The smuggled MAIL was not executed: a MAIL sent on its own now starts a transaction.
      expect(await c.command('MAIL FROM:<a@example.com>')).toMatchObject({ code: 250 });
      c.close();
    }));

  it('is off by default: a pipelined MAIL after "." is served', () =>
    withServer({}, async (server) => {
      const c = await ehloClient(server.port);
      c.write(`${ENVELOPE}DATA\r\n`);
      await c.read(3);
      c.write(`x\r\n.\r\n${ENVELOPE}`);
      expect((await c.read(3)).map((r) => r.code)).toEqual([250, 250, 250]);
      c.close();
    }));
});

describe('protocol breakers', () => {
  it('answerFirstOnly: of a pipelined group only the first command gets a reply', () =>
    withServer({ answerFirstOnly: true }, async (server) => {
      const c = await ehloClient(server.port);
      c.write(`${ENVELOPE}DATA\r\n`);
      expect(await c.reply()).toMatchObject({ code: 250, enhanced: '2.1.0' });
      // A NOOP of its own is answered: the RCPT and DATA above were read and dropped (not answered,
      // not executed), so the transaction has no recipient.
      expect(await c.command('NOOP')).toMatchObject({ code: 250 });
      expect(c.pending).toBe(0);
      expect(server.connections[0].commands).toBe(5); // EHLO, MAIL, RCPT, DATA, NOOP
      expect(server.connections[0].replies).toBe(4); // greeting, EHLO, MAIL, NOOP
      expect(await c.command('DATA')).toMatchObject({ code: 554 });
      c.close();
    }));

  it('the unsolicited action sends a second reply nobody asked for', () =>
    withServer({ faults: [{ command: 'NOOP', action: 'unsolicited', reply: '250 2.0.0 By the way' }] }, async (server) => {
      const c = await ehloClient(server.port);
      c.write('NOOP\r\n');
      const [answer, extra] = await c.read(2);
      expect(answer).toMatchObject({ code: 250, text: '2.0.0 Ok' });
      expect(extra).toMatchObject({ code: 250, text: '2.0.0 By the way' });
      expect(server.connections[0].replies).toBe(4); // greeting, EHLO, NOOP and the extra one
      c.close();
    }));

  it('an unsolicited reply right after the greeting', () =>
    withServer({ faults: [{ command: 'CONNECT', action: 'unsolicited', reply: '421 4.3.2 Going away soon' }] }, async (server) => {
      const c = await RawClient.connect(server.port);
      const [greeting, extra] = await c.read(2);
      expect(greeting.code).toBe(220);
      expect(extra).toMatchObject({ code: 421, enhanced: '4.3.2' });
      c.close();
    }));

  it('answers DATA with 250 instead of 354', () =>
    withServer({ faults: [{ command: 'DATA', reply: '250 2.0.0 Ok' }] }, async (server) => {
      const c = await ehloClient(server.port);
      c.write(`${ENVELOPE}DATA\r\n`);
      expect((await c.read(3)).map((r) => r.code)).toEqual([250, 250, 250]);
      c.close();
    }));

  it('answers the final "." with 354 (the message is in the inbox: the client cannot know)', () =>
    withServer({ faults: [{ command: 'DOT', reply: '354 Go ahead' }] }, async (server) => {
      const c = await ehloClient(server.port);
      c.write(`${ENVELOPE}DATA\r\n`);
      await c.read(3);
      c.write('x\r\n.\r\n');
      expect(await c.reply()).toMatchObject({ code: 354, text: 'Go ahead' });
      expect(server.inbox.messages).toHaveLength(1);
      c.close();
    }));

  it('answers BDAT LAST with 354', () =>
    withServer({ faults: [{ command: 'BDAT_LAST', reply: '354 Go ahead' }] }, async (server) => {
      const c = await ehloClient(server.port);
      c.write(`${ENVELOPE}BDAT 3\r\nab\nBDAT 3 LAST\r\ncd\n`);
      expect((await c.read(4)).map((r) => r.code)).toEqual([250, 250, 250, 354]);
      c.close();
    }));

  it('the unsolicited action needs a reply', async () => {
    await expect(startMockServer({ faults: [{ command: 'NOOP', action: 'unsolicited' }] })).rejects.toMatchObject({ code: 'EMOCKOPTIONS' });
  });
});

describe('"too many recipients" variants', () => {
  for (const [reply, code, enhanced] of [
    [undefined, 452, '4.5.3'],
    ['452 4.5.3 Too many recipients', 452, '4.5.3'],
    ['451 4.5.3 Too many recipients', 451, '4.5.3'],
    ['552 Too many recipients', 552, null],
    ['452 Too many recipients', 452, null],
  ] as const) {
    it(`refuses the recipient beyond maxRecipients with ${reply ?? 'the default'}`, () =>
      withServer({ maxRecipients: 2, tooManyRecipientsReply: reply }, async (server) => {
        const c = await ehloClient(server.port);
        c.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b1@example.com>\r\nRCPT TO:<b2@example.com>\r\nRCPT TO:<b3@example.com>\r\nDATA\r\n');
        const replies = await c.read(5);
        expect(replies.map((r) => r.code)).toEqual([250, 250, 250, code, 354]);
        expect(replies[3].enhanced).toBe(enhanced);
        c.write('x\r\n.\r\n');
        await c.reply();
        expect(server.inbox.messages[0].to).toEqual(['b1@example.com', 'b2@example.com']);
        c.close();
      }));
  }
});

describe('echoCredentialsOnFailure', () => {
  it('quotes the user and password it was given in its 535 (PLAIN through nodemailer)', () =>
    withServer({ users: { alice: 'secret' }, echoCredentialsOnFailure: true, extensions: { starttls: false } }, async (server) => {
      const transport = nodemailer.createTransport({ host: '127.0.0.1', port: server.port, auth: { user: 'alice', pass: 'hunter2' } });
      const error = (await transport.sendMail({ from: 'a@example.com', to: 'b@example.com', text: 'x' }).catch((e: unknown) => e)) as {
        responseCode?: number;
        response?: string;
      };
      transport.close();
      expect(error.responseCode).toBe(535);
      expect(error.response).toBe('535 5.7.8 Authentication failed for alice with password hunter2');
    }));

  it('LOGIN too, on a raw socket; right credentials still pass', () =>
    withServer({ users: { alice: 'secret' }, echoCredentialsOnFailure: true }, async (server) => {
      const b64 = (s: string) => Buffer.from(s).toString('base64');
      const c = await ehloClient(server.port);
      expect((await c.command('AUTH LOGIN')).code).toBe(334);
      expect((await c.command(b64('alice'))).code).toBe(334);
      expect(await c.command(b64('wrong\r\npass'))).toMatchObject({ code: 535, text: '5.7.8 Authentication failed for alice with password wrong??pass' });
      await c.command('AUTH LOGIN');
      await c.command(b64('alice'));
      expect((await c.command(b64('secret'))).code).toBe(235);
      c.close();
    }));
});

import { describe, expect, it } from 'vitest';
import { SluiceError } from '../src/index.js';
import { message, outcomes, pool, server } from './helpers.js';

const modes = [
  { name: 'pipelined DATA', server: { extensions: { chunking: false } }, client: {} },
  { name: 'CHUNKING', server: {}, client: {} },
  { name: 'lock-step', server: { extensions: { pipelining: false, chunking: false } }, client: {} },
] as const;

for (const mode of modes) {
  describe(`outcomes (${mode.name})`, () => {
    it('delivers to the accepted recipients and reports each rejected one', async () => {
      const s = await server({ ...mode.server, faults: [{ command: 'RCPT', recipient: 'bad@example.com', reply: '550 5.1.1 No such user' }] });
      const p = pool(s, mode.client);
      const result = await p.send(message(0, { to: ['good@example.com', 'bad@example.com', 'also@example.com'] }));
      expect(result.outcome).toBe('delivered');
      expect(result.accepted.map((r) => r.address)).toEqual(['good@example.com', 'also@example.com']);
      expect(result.rejected).toEqual([{ address: 'bad@example.com', code: 550, enhancedCode: '5.1.1', response: '550 5.1.1 No such user' }]);
      expect(result.messageId).toBe('<m0@sluice.test>');
      expect(result.responseCode).toBe(250);
      expect(s.inbox.messages).toHaveLength(1);
      expect(s.inbox.messages[0]!.to).toEqual(['good@example.com', 'also@example.com']);
    });

    it('rejects a message whose every recipient is refused, and sends no content', async () => {
      const s = await server({ ...mode.server, faults: [{ command: 'RCPT', reply: '550 5.1.1 No such user' }] });
      const p = pool(s, mode.client);
      const err = (await p.send(message(0, { to: ['x@example.com', 'y@example.com'] })).catch((e) => e)) as SluiceError;
      expect(err).toBeInstanceOf(SluiceError);
      expect(err.outcome).toBe('rejected');
      expect(err.code).toBe('EENVELOPE');
      expect(err.command).toBe('RCPT');
      expect(err.responseCode).toBe(550);
      expect(err.enhancedCode).toBe('5.1.1');
      expect(err.permanent).toBe(true);
      expect(err.rejected?.map((r) => r.address)).toEqual(['x@example.com', 'y@example.com']);
      // The connection keeps working, and RSET clears the failed transaction first.
      s.setFaults([]);
      await p.send(message(1));
      expect(s.inbox.messages).toHaveLength(1);
      expect(s.connections[0]!.byCommand.RSET).toBe(1);
      if (mode.name === 'lock-step') {
        // Without PIPELINING every command waits for the previous reply, RSET included: one read per
        // command, plus one for the content.
        expect(s.connections[0]!.reads).toBe(s.connections[0]!.commands + 1);
      }
    });

    it('sends the rest in another transaction after "452 too many recipients"', async () => {
      const s = await server({ ...mode.server, maxRecipients: 2 });
      const p = pool(s, mode.client);
      const to = ['a@example.com', 'b@example.com', 'c@example.com', 'd@example.com', 'e@example.com'];
      const result = await p.send(message(0, { to }));
      expect(result.accepted.map((r) => r.address)).toEqual(to);
      expect(result.rejected).toEqual([]);
      expect(result.attempts).toBe(3);
      expect(s.inbox.messages.map((m) => m.to)).toEqual([to.slice(0, 2), to.slice(2, 4), to.slice(4)]);
    });

    it('rejects on a permanent MAIL refusal', async () => {
      const s = await server({ ...mode.server, faults: [{ command: 'MAIL', reply: '553 5.7.1 Sender not allowed' }] });
      const p = pool(s, mode.client);
      const err = (await p.send(message(0)).catch((e) => e)) as SluiceError;
      expect(err.outcome).toBe('rejected');
      expect([err.code, err.command, err.responseCode, err.enhancedCode]).toEqual(['EENVELOPE', 'MAIL', 553, '5.7.1']);
      // Each recipient is reported with MAIL's reply, not the pipelined RCPT's "503 need MAIL".
      expect(err.rejected).toEqual([{ address: 'rcpt0@example.com', code: 553, enhancedCode: '5.7.1', response: '553 5.7.1 Sender not allowed' }]);
      expect(s.inbox.messages).toHaveLength(0);
    });

    it('rejects on a permanent refusal of the content', async () => {
      const command = mode.name === 'CHUNKING' ? 'BDAT_LAST' : 'DOT';
      const s = await server({ ...mode.server, faults: [{ command, reply: '554 5.6.0 Message rejected' }] });
      const p = pool(s, mode.client);
      const err = (await p.send(message(0)).catch((e) => e)) as SluiceError;
      expect(err.outcome).toBe('rejected');
      expect(err.code).toBe('EMESSAGE');
      expect(err.responseCode).toBe(554);
      expect(s.inbox.messages).toHaveLength(0);
    });

    it('retries a transient refusal of the content and delivers exactly once', async () => {
      const command = mode.name === 'CHUNKING' ? 'BDAT_LAST' : 'DOT';
      const s = await server({ ...mode.server, faults: [{ command, reply: '451 4.3.0 Try again', times: 1 }] });
      const p = pool(s, mode.client);
      const result = await p.send(message(0));
      expect(result.attempts).toBe(2);
      expect(s.inbox.messages).toHaveLength(1);
    });

    it('fails after the retry budget when the server keeps answering 4xx', async () => {
      const s = await server({ ...mode.server, faults: [{ command: 'MAIL', reply: '451 4.3.0 Busy' }] });
      const p = pool(s, { ...mode.client, retry: { retries: 2, minDelay: 1, maxDelay: 2 } });
      const err = (await p.send(message(0)).catch((e) => e)) as SluiceError;
      expect(err.outcome).toBe('failed');
      expect(err.responseCode).toBe(451);
      expect(err.permanent).toBe(false);
      expect(err.attempts).toBe(3);
      expect(s.inbox.messages).toHaveLength(0);
    });

    it('requeues a message whose connection dropped before the content and delivers it once', async () => {
      const command = mode.name === 'CHUNKING' ? 'MAIL' : 'DATA';
      const s = await server({ ...mode.server, faults: [{ command, action: 'drop', times: 1 }] });
      const p = pool(s, mode.client);
      const result = await p.send(message(0));
      expect(result.outcome).toBe('delivered');
      expect(s.inbox.messages).toHaveLength(1);
    });

    it('reports UNKNOWN, and does not resend, when the connection drops after the content', async () => {
      const command = mode.name === 'CHUNKING' ? 'BDAT_LAST' : 'DOT';
      const s = await server({ ...mode.server, faults: [{ command, action: 'drop', times: 1 }] });
      const p = pool(s, mode.client);
      const err = (await p.send(message(0)).catch((e) => e)) as SluiceError;
      expect(err.outcome).toBe('unknown');
      expect(err.code).toBe('EUNKNOWN');
      // The pool keeps working; the unknown message was not sent again.
      await p.send(message(1));
      await p.close();
      expect(s.inbox.messages.map((m) => m.to[0])).toEqual(['rcpt1@example.com']);
      expect(s.connections.reduce((n, c) => n + (c.byCommand.MAIL ?? 0), 0)).toBe(2);
    });

    it('resends an unknown outcome only when the user opts in', async () => {
      const command = mode.name === 'CHUNKING' ? 'BDAT_LAST' : 'DOT';
      const s = await server({ ...mode.server, faults: [{ command, action: 'drop', times: 1 }] });
      const p = pool(s, { ...mode.client, retryUnknown: true });
      const result = await p.send(message(0));
      expect(result.attempts).toBe(2);
      expect(s.inbox.messages).toHaveLength(1);
    });
  });
}

describe('outcomes across a batch', () => {
  it('gives every message exactly one outcome and the inbox agrees', async () => {
    const s = await server({
      extensions: { chunking: false },
      faults: [
        { command: 'RCPT', recipient: /^rej/, reply: '550 5.1.1 No such user' },
        { command: 'DOT', message: 7, reply: '451 4.3.0 Later' },
        { command: 'DOT', message: 13, action: 'drop' },
      ],
    });
    const p = pool(s, { maxConnections: 3, maxMessagesPerConnection: 10 });
    const sends = Array.from({ length: 30 }, (_, i) => p.send(message(i, { to: [i % 10 === 3 ? `rej${i}@example.com` : `ok${i}@example.com`] })));
    const counts = await outcomes(sends);
    await p.close();
    expect(counts.delivered! + (counts.rejected ?? 0) + (counts.unknown ?? 0) + (counts.failed ?? 0)).toBe(30);
    expect(counts.rejected).toBe(3);
    expect(counts.unknown).toBe(1);
    expect(s.inbox.messages).toHaveLength(counts.delivered!);
    const delivered = s.inbox.messages.map((m) => m.to[0]);
    expect(new Set(delivered).size).toBe(delivered.length);
  });

  it('sends a lone "." when DATA gets 354 although every recipient failed', async () => {
    // A broken server: RCPTs refused, DATA answered 354 anyway (RFC 2920 §3.1).
    const s = await server({ extensions: { chunking: false }, faults: [{ command: 'RCPT', reply: '550 5.1.1 No' }, { command: 'DATA', reply: '354 Go ahead' }] });
    const p = pool(s);
    const err = (await p.send(message(0)).catch((e) => e)) as SluiceError;
    expect(err.outcome).toBe('rejected');
    const c = s.connections[0]!;
    expect(c.byCommand.DATA).toBe(1);
  });
});

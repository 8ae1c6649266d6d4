import net from 'node:net';
import { SMTPServer } from 'smtp-server';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createPool, type PoolOptions, type SluiceError } from '../src/index.js';

// smtp-server in LMTP mode (RFC 2033) as the peer: it refuses EHLO, wants LHLO, and answers the final
// "." once per accepted recipient, with what onData says for each.

type Verdict = 'ok' | { code: number; message: string };

async function lmtpServer(verdicts: (to: string[]) => Verdict[]) {
  const received: Array<{ to: string[]; greeting: string }> = [];
  const server = new SMTPServer({
    lmtp: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      stream.resume();
      stream.on('end', () => {
        const to = session.envelope.rcptTo.map((r) => r.address);
        received.push({ to, greeting: session.openingCommand });
        callback(null, verdicts(to).map((v) => (v === 'ok' ? 'OK delivered' : Object.assign(new Error(v.message), { responseCode: v.code }))) as never);
      });
    },
    onRcptTo(address, _session, callback) {
      if (address.address.startsWith('unknown')) return callback(Object.assign(new Error('No such mailbox'), { responseCode: 550 }));
      callback();
    },
  });
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.server.address() as { port: number }).port, received };
}

function pool(port: number, options: Partial<PoolOptions> = {}) {
  const p = createPool({ host: '127.0.0.1', port, name: 'client.sluice.test', lmtp: true, retry: { minDelay: 5, maxDelay: 20 }, ...options });
  onTestFinished(() => p.destroy());
  return p;
}

const body = 'Subject: lmtp\r\n\r\nHello\r\n';

describe('LMTP (RFC 2033)', () => {
  it('says LHLO and reads one reply per recipient after the "."', async () => {
    const { port, received } = await lmtpServer((to) => to.map(() => 'ok'));
    const p = pool(port);
    const result = await p.send({ envelope: { from: 'a@example.com', to: ['b@example.com', 'c@example.com'] }, body });
    expect(received).toEqual([{ to: ['b@example.com', 'c@example.com'], greeting: 'LHLO' }]);
    expect(result.outcome).toBe('delivered');
    expect(result.accepted.map((r) => [r.address, r.code])).toEqual([
      ['b@example.com', 250],
      ['c@example.com', 250],
    ]);
    // Pipelined messages stay in step: each "." owes as many replies as it had recipients.
    const more = await Promise.all([0, 1, 2].map((i) => p.send({ envelope: { from: 'a@example.com', to: [`x${i}@example.com`, `y${i}@example.com`] }, body })));
    expect(more.map((r) => r.accepted.length)).toEqual([2, 2, 2]);
    expect(received).toHaveLength(4);
  });

  it('reports a recipient refused after the "." as rejected, the others delivered, and a refused RCPT skipped in the count', async () => {
    const { port, received } = await lmtpServer((to) => to.map((a) => (a.startsWith('full') ? { code: 552, message: 'Mailbox full' } : 'ok')));
    const p = pool(port);
    const result = await p.send({ envelope: { from: 'a@example.com', to: ['unknown@example.com', 'full@example.com', 'ok@example.com'] }, body });
    expect(result.outcome).toBe('delivered');
    expect(result.accepted.map((r) => r.address)).toEqual(['ok@example.com']);
    expect(result.rejected.map((r) => [r.address, r.code])).toEqual([
      ['unknown@example.com', 550],
      ['full@example.com', 552],
    ]);
    expect(received.map((r) => r.to)).toEqual([['full@example.com', 'ok@example.com']]);
  });

  it('reports a recipient a 4xx after the "." did not reach as pending, as a 4xx to RCPT is (not retried)', async () => {
    const { port, received } = await lmtpServer((to) => to.map((a) => (a === 'busy@example.com' ? { code: 451, message: 'Mailbox locked' } : 'ok')));
    const p = pool(port);
    const result = await p.send({ envelope: { from: 'a@example.com', to: ['ok@example.com', 'busy@example.com'] }, body });
    expect(result.outcome).toBe('delivered');
    expect(result.accepted.map((r) => r.address)).toEqual(['ok@example.com']);
    expect(result.pending.map((r) => [r.address, r.code])).toEqual([['busy@example.com', 451]]);
    expect(received.map((r) => r.to)).toEqual([['ok@example.com', 'busy@example.com']]);
  });

  it('tries the whole message again when every recipient got a 4xx after the "." (none has it)', async () => {
    let attempt = 0;
    const { port, received } = await lmtpServer((to) => {
      attempt++;
      return to.map(() => (attempt === 1 ? { code: 451, message: 'Try later' } : 'ok'));
    });
    const p = pool(port);
    const result = await p.send({ envelope: { from: 'a@example.com', to: ['b@example.com', 'c@example.com'] }, body });
    expect(result).toMatchObject({ outcome: 'delivered', attempts: 2 });
    expect(received).toHaveLength(2);
  });

  it('fails when every recipient is refused after the "."', async () => {
    const { port } = await lmtpServer((to) => to.map(() => ({ code: 550, message: 'Rejected by policy' })));
    const p = pool(port);
    const err = (await p.send({ envelope: { from: 'a@example.com', to: ['b@example.com', 'c@example.com'] }, body }).catch((e) => e)) as SluiceError;
    expect(err).toMatchObject({ outcome: 'rejected', responseCode: 550 });
  });

  it('holds the message as unknown when the connection ends before every recipient’s reply came', async () => {
    // A server that answers the "." for the first recipient only, then drops the connection.
    let messages = 0;
    const server = net.createServer((socket) => {
      let buffer = '';
      let inData = false;
      socket.write('220 lmtp.test LMTP\r\n');
      socket.on('data', (chunk) => {
        buffer += chunk.toString('latin1');
        for (;;) {
          if (inData) {
            const end = buffer.indexOf('\r\n.\r\n');
            if (end === -1) return;
            buffer = buffer.slice(end + 5);
            inData = false;
            messages++;
            socket.end('250 2.0.0 <b@example.com> delivered\r\n');
            return;
          }
          const eol = buffer.indexOf('\r\n');
          if (eol === -1) return;
          const line = buffer.slice(0, eol).toUpperCase();
          buffer = buffer.slice(eol + 2);
          if (line.startsWith('LHLO')) socket.write('250-lmtp.test\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n');
          else if (line === 'DATA') {
            socket.write('354 go ahead\r\n');
            inData = true;
          } else if (line.startsWith('QUIT')) socket.end('221 bye\r\n');
          else socket.write('250 2.1.0 ok\r\n');
        }
      });
      socket.on('error', () => socket.destroy());
    });
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const p = pool((server.address() as net.AddressInfo).port);
    const err = (await p.send({ envelope: { from: 'a@example.com', to: ['b@example.com', 'c@example.com'] }, body }).catch((e) => e)) as SluiceError;
    expect(err).toMatchObject({ outcome: 'unknown' });
    expect(messages).toBe(1);
  });
});

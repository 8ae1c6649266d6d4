import { Readable } from 'node:stream';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import { createPool, type Pool, type SluiceError } from '../src/index.js';

// smtp-server (nodemailer's server library) as an independent peer: an implementation sluice did not
// write, with its own reading of PIPELINING, DATA and AUTH.

interface Received {
  from: string;
  to: string[];
  body: string;
  user: string | undefined;
}

let servers: SMTPServer[] = [];
let pools: Pool[] = [];
afterEach(async () => {
  await Promise.all(pools.map((p) => p.destroy()));
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  servers = [];
  pools = [];
});

async function start(options: SMTPServerOptions = {}): Promise<{ port: number; received: Received[] }> {
  const received: Received[] = [];
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    authOptional: true,
    logger: false,
    onRcptTo(address, _session, callback) {
      if (address.address.startsWith('nobody')) return callback(Object.assign(new Error('No such user'), { responseCode: 550 }));
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          body: Buffer.concat(chunks).toString(),
          user: session.user as string | undefined,
        });
        callback();
      });
    },
    ...options,
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.server.address() as { port: number }).port, received };
}

function pool(port: number, options: Parameters<typeof createPool>[0] | object = {}): Pool {
  const p = createPool({ host: '127.0.0.1', port, name: 'client.sluice.test', retry: { minDelay: 5, maxDelay: 20 }, ...options });
  pools.push(p);
  return p;
}

describe('against smtp-server', () => {
  it('delivers a batch pipelined across messages over DATA, content intact', async () => {
    const { port, received } = await start();
    const p = pool(port, { maxConnections: 2, maxMessagesPerConnection: 10 });
    const body = (i: number) => `Subject: ${i}\r\n\r\n.starts with a dot\r\nline ${i}\r\n`;
    await Promise.all(Array.from({ length: 30 }, (_, i) => p.send({ envelope: { from: 'a@example.com', to: [`b${i}@example.com`] }, body: body(i) })));
    await p.close();
    expect(received).toHaveLength(30);
    for (const r of received) expect(r.body).toBe(body(Number(r.to[0]!.slice(1, r.to[0]!.indexOf('@')))));
  });

  it('reports a recipient refused by the server and delivers to the others', async () => {
    const { port, received } = await start();
    const p = pool(port);
    const result = await p.send({ envelope: { from: 'a@example.com', to: ['ok@example.com', 'nobody@example.com'] }, body: 'Subject: x\r\n\r\nx\r\n' });
    expect(result.accepted.map((r) => r.address)).toEqual(['ok@example.com']);
    expect(result.rejected[0]).toMatchObject({ address: 'nobody@example.com', code: 550 });
    const err = (await p.send({ envelope: { from: 'a@example.com', to: ['nobody@example.com'] }, body: 'x' }).catch((e) => e)) as SluiceError;
    expect(err).toMatchObject({ outcome: 'rejected', code: 'EENVELOPE', command: 'RCPT', responseCode: 550 });
    expect(received.map((r) => r.to)).toEqual([['ok@example.com']]);
  });

  for (const authMethod of ['PLAIN', 'LOGIN'] as const) {
    it(`authenticates with ${authMethod} (clear text only because the test allows it)`, async () => {
      const { port, received } = await start({
        authOptional: false,
        allowInsecureAuth: true,
        authMethods: ['PLAIN', 'LOGIN'],
        onAuth(auth, _session, callback) {
          if (auth.username === 'alice' && auth.password === 'secret') return callback(null, { user: 'alice' });
          callback(new Error('Invalid credentials'));
        },
      });
      const p = pool(port, { auth: { user: 'alice', pass: 'secret' }, authMethod, allowInsecureAuth: true });
      await p.send({ envelope: { from: 'a@example.com', to: ['b@example.com'] }, body: 'Subject: x\r\n\r\nx\r\n' });
      expect(received[0]!.user).toBe('alice');
      const bad = pool(port, { auth: { user: 'alice', pass: 'wrong' }, authMethod, allowInsecureAuth: true });
      await expect(bad.send({ envelope: { from: 'a@example.com', to: ['b@example.com'] }, body: 'x' })).rejects.toMatchObject({ code: 'EAUTH', responseCode: 535 });
    });
  }
});

// Issue 16: a recipient cap said the old way (552, RFC 5321 §4.5.3.1.10), with a stream body that
// every transaction must get, and a body stream that stops yielding.
describe('against smtp-server: limits and stalls', () => {
  const capped = (max: number): SMTPServerOptions => ({
    onRcptTo(_address, session, callback) {
      if (session.envelope.rcptTo.length >= max) return callback(Object.assign(new Error('Too many recipients'), { responseCode: 552 }));
      callback();
    },
  });

  for (const pipelining of [true, false]) {
    it(`552 "Too many recipients" beyond 3 (${pipelining ? 'pipelined' : 'lock-step'}): a stream body goes to all 7 recipients in 3 transactions`, async () => {
      const { port, received } = await start(capped(3));
      const p = pool(port, { pipelining });
      const to = Array.from({ length: 7 }, (_, i) => `r${i}@example.com`);
      const lines = Array.from({ length: 500 }, (_, i) => `line ${i}\r\n`);
      const result = await p.send({ envelope: { from: 'a@example.com', to }, body: Readable.from(['Subject: capped\r\n\r\n', ...lines].map((l) => Buffer.from(l))) });
      expect(result.accepted.map((r) => r.address)).toEqual(to);
      expect(result.pending).toEqual([]);
      expect(received.map((r) => r.to)).toEqual([to.slice(0, 3), to.slice(3, 6), to.slice(6)]);
      for (const r of received) expect(r.body).toBe(`Subject: capped\r\n\r\n${lines.join('')}`);
    });
  }

  it('a body stream that stops yielding: ETIMEDOUT after the data-block timeout, the next message delivered, close() resolves', async () => {
    const { port, received } = await start();
    const p = pool(port, { maxConnections: 1, timeouts: { dataBlock: 300 } });
    const stalled = new Readable({ read() {} });
    stalled.push('Subject: stalled\r\n\r\nfirst\r\n');
    const first = p.send({ envelope: { from: 'a@example.com', to: ['b@example.com'] }, body: stalled });
    const second = p.send({ envelope: { from: 'a@example.com', to: ['c@example.com'] }, body: 'Subject: next\r\n\r\nok\r\n' });
    await expect(first).rejects.toMatchObject({ code: 'ETIMEDOUT', outcome: 'failed' });
    expect((await second).outcome).toBe('delivered');
    await p.close();
    expect(received.map((r) => r.to)).toEqual([['c@example.com']]);
  });
});

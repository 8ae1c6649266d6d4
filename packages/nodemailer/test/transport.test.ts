import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { createPool, isSluiceError, SluiceError } from '@sluice/core';
import { type MockServer, startMockServer } from '@sluice/mock-server';
import nodemailer, { type SendMailOptions } from 'nodemailer';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type SluiceTransport, type SluiceTransportOptions, sluiceTransport } from '../src/index.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

let server: MockServer;
beforeAll(async () => {
  server = await startMockServer({ extensions: { starttls: false }, users: { alice: 'secret' } });
});
afterAll(() => server.close());
afterEach(() => {
  server.reset?.();
  server.clear();
});

const toClose: Array<{ close(): unknown }> = [];
afterEach(async () => {
  await Promise.all(toClose.splice(0).map((t) => t.close()));
});

function transport(options: Partial<SluiceTransportOptions> = {}) {
  const t = sluiceTransport({ host: server.host, port: server.port, retry: false, ...options } as SluiceTransportOptions);
  toClose.push(t);
  return { transport: t, transporter: nodemailer.createTransport(t) };
}

const mail = (n: number, extra: SendMailOptions = {}): SendMailOptions => ({
  from: 'sender@example.com',
  to: 'rcpt@example.com',
  subject: `Message ${n}`,
  text: `Body ${n}`,
  ...extra,
});

const until = async (predicate: () => boolean, timeoutMs = 5000) => {
  const end = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
};

describe('transport contract', () => {
  it('has a name, the package version and supportsAbortSignal', () => {
    const { transport: t, transporter } = transport();
    expect(t.name).toBe('sluice');
    expect(t.version).toBe(pkg.version);
    expect(t.supportsAbortSignal).toBe(true);
    expect(transporter.transporter).toBe(t);
    expect(transporter.getVersionString()).toContain(`sluice/${pkg.version}`);
  });

  it('sends through sendMail (promise and callback forms) with the info of nodemailer SMTP pool', async () => {
    const { transporter } = transport();
    const info = await transporter.sendMail(mail(1, { to: 'a@example.com, B <b@example.com>', messageId: '<id-1@example.com>' }));
    expect(info).toEqual({
      envelope: { from: 'sender@example.com', to: ['a@example.com', 'b@example.com'] },
      messageId: '<id-1@example.com>',
      accepted: ['a@example.com', 'b@example.com'],
      rejected: [],
      pending: [],
      response: expect.stringMatching(/^250 2\.0\.0 Ok: queued as \w+$/),
    });
    expect(info.response).toBe(`250 2.0.0 Ok: queued as ${server.inbox.messages[0]!.id}`);

    const viaCallback = await new Promise<[unknown, unknown]>((resolve) => transporter.sendMail(mail(2), (err, i) => resolve([err, i])));
    expect(viaCallback[0]).toBeNull();
    expect(viaCallback[1]).toMatchObject({ accepted: ['rcpt@example.com'], messageId: expect.stringMatching(/^<.+@example\.com>$/) });
    expect(server.inbox.messages.map((m) => m.raw!.toString().match(/^Subject: (.*)$/m)![1])).toEqual(['Message 1', 'Message 2']);
  });

  it('applies stream plugins and custom headers set by plugins (the message is never rebuilt)', async () => {
    const { transporter } = transport();
    transporter.use('stream', (m, done) => {
      m.message.setHeader('X-Stream-Plugin', 'ran');
      done();
    });
    transporter.use('compile', (m, done) => {
      m.data.subject = `${m.data.subject} [compiled]`;
      done();
    });
    await transporter.sendMail(mail(3));
    const raw = server.inbox.messages[0]!.raw!.toString();
    expect(raw).toContain('X-Stream-Plugin: ran\r\n');
    expect(raw).toContain('Subject: Message 3 [compiled]\r\n');
  });

  it('reports a message that cannot be rendered as EMESSAGE, before anything is sent', async () => {
    const { transporter } = transport();
    const err = await transporter.sendMail(mail(4, { attachments: [{ path: '/nonexistent/sluice-test.pdf' }] })).catch((e) => e);
    expect(isSluiceError(err)).toBe(true);
    expect(err).toMatchObject({ code: 'EMESSAGE', outcome: 'rejected' });
    expect(err.cause).toMatchObject({ code: 'ENOENT' });
    expect(server.inbox.messages).toHaveLength(0);
  });
});

describe('recipients and errors', () => {
  it('partial rejection: accepted, rejected and rejectedErrors like nodemailer', async () => {
    server.setFaults([{ command: 'RCPT', recipient: 'bad@example.com', reply: '550 5.1.1 No such user' }]);
    const { transporter } = transport();
    const info = await transporter.sendMail(mail(5, { to: 'good@example.com, bad@example.com, other@example.com' }));
    expect(info.accepted).toEqual(['good@example.com', 'other@example.com']);
    expect(info.rejected).toEqual(['bad@example.com']);
    expect(info.pending).toEqual([]);
    expect(info.rejectedErrors).toHaveLength(1);
    const [rcptErr] = info.rejectedErrors!;
    expect(rcptErr).toBeInstanceOf(SluiceError);
    expect(rcptErr).toMatchObject({
      code: 'EENVELOPE',
      command: 'RCPT',
      responseCode: 550,
      enhancedCode: '5.1.1',
      response: '550 5.1.1 No such user',
      recipient: 'bad@example.com',
      message: 'Recipient command failed: 550 5.1.1 No such user',
    });
    expect(server.inbox.messages[0]!.to).toEqual(['good@example.com', 'other@example.com']);

    // The same fields nodemailer's own SMTP transport reports.
    const smtp = nodemailer.createTransport({ host: server.host, port: server.port, ignoreTLS: true });
    const theirs = await smtp.sendMail(mail(5, { to: 'good@example.com, bad@example.com, other@example.com' }));
    smtp.close();
    expect([theirs.accepted, theirs.rejected]).toEqual([info.accepted, info.rejected]);
    const their = theirs.rejectedErrors![0]!;
    expect([their.code, their.responseCode, their.response, their.recipient]).toEqual([
      rcptErr!.code,
      rcptErr!.responseCode,
      rcptErr!.response,
      (rcptErr as { recipient?: string }).recipient,
    ]);
  });

  it('4xx recipients are pending', async () => {
    server.setFaults([{ command: 'RCPT', recipient: 'later@example.com', reply: '450 4.2.1 Mailbox busy' }]);
    const { transporter } = transport();
    const info = await transporter.sendMail(mail(6, { to: 'now@example.com, later@example.com' }));
    expect(info.accepted).toEqual(['now@example.com']);
    expect(info.pending).toEqual(['later@example.com']);
    expect(info.rejected).toEqual([]);
  });

  it('every recipient rejected: the callback gets the SluiceError, with rejectedErrors', async () => {
    server.setFaults([{ command: 'RCPT', recipient: /@nowhere\.example$/, reply: '550 5.1.1 No such user' }]);
    const { transporter } = transport();
    const err = await new Promise<unknown>((resolve) =>
      transporter.sendMail(mail(7, { to: 'a@nowhere.example, b@nowhere.example' }), (e, info) => {
        expect(info).toBeUndefined();
        resolve(e);
      }),
    );
    expect(isSluiceError(err)).toBe(true);
    expect(err).toMatchObject({ code: 'EENVELOPE', outcome: 'rejected', responseCode: 550, command: 'RCPT', messageId: expect.any(String) });
    const e = err as SluiceError & { rejectedErrors: SluiceError[] };
    expect(e.rejected!.map((r) => r.address)).toEqual(['a@nowhere.example', 'b@nowhere.example']);
    expect(e.rejectedErrors.map((r) => [r.code, r.responseCode, (r as { recipient?: string }).recipient])).toEqual([
      ['EENVELOPE', 550, 'a@nowhere.example'],
      ['EENVELOPE', 550, 'b@nowhere.example'],
    ]);
    expect(server.inbox.messages).toHaveLength(0);
  });

  it('a refused message (5xx to the content) and an unreachable server carry code, responseCode and command', async () => {
    server.setFaults([{ command: 'BDAT_LAST', reply: '554 5.7.1 Spam detected' }]);
    const { transporter } = transport();
    await expect(transporter.sendMail(mail(8))).rejects.toMatchObject({ code: 'EMESSAGE', outcome: 'rejected', responseCode: 554, command: 'BDAT' });

    const unreachable = transport({ port: 1 }).transporter;
    await expect(unreachable.sendMail(mail(9))).rejects.toMatchObject({ code: 'ECONNECTION', outcome: 'failed' });
  });
});

describe('abort', () => {
  it('drops a queued message when mail.data.signal aborts', async () => {
    // One connection, held by a first message whose MAIL reply is slow: the second waits in the queue.
    server.setFaults([{ command: 'MAIL', action: 'delay', delayMs: 300, message: 1 }]);
    const { transport: t, transporter } = transport({ maxConnections: 1 });
    const first = transporter.sendMail(mail(10));
    const controller = new AbortController();
    const second = transporter.sendMail(mail(11, { signal: controller.signal })).catch((e) => e);
    await until(() => t.pool.stats.queued === 1);
    controller.abort(new Error('user gave up'));
    const err = await second;
    expect(isSluiceError(err)).toBe(true);
    expect(err).toMatchObject({ code: 'EABORT', outcome: 'failed' });
    expect(err.cause).toMatchObject({ message: 'user gave up' });
    await first;
    await t.close();
    expect(server.inbox.messages.map((m) => m.raw!.toString().match(/^Subject: (.*)$/m)![1])).toEqual(['Message 10']);
  });

  it('stops rendering a message whose content is still arriving', async () => {
    const { transport: t, transporter } = transport();
    const slow = new PassThrough();
    slow.write('the first part of the attachment');
    const controller = new AbortController();
    const pending = transporter.sendMail(mail(12, { signal: controller.signal, attachments: [{ filename: 'slow.txt', content: slow }] })).catch((e) => e);
    await new Promise((r) => setTimeout(r, 50));
    expect(t.isIdle()).toBe(true);
    controller.abort();
    const err = await pending;
    // The core's error, not nodemailer's AbortError: the transport had the message and stopped rendering it.
    expect(isSluiceError(err)).toBe(true);
    expect(err).toMatchObject({ code: 'EABORT', outcome: 'failed' });
    expect(slow.destroyed).toBe(true);
    expect(server.connections).toHaveLength(0);
  });

  it('a message already on the wire is not aborted (it is committed)', async () => {
    server.setFaults([{ command: 'BDAT_LAST', action: 'delay', delayMs: 200 }]);
    const { transporter } = transport();
    const controller = new AbortController();
    const sent = transporter.sendMail(mail(13, { signal: controller.signal }));
    await until(() => server.connections[0]?.byCommand.BDAT === 1);
    controller.abort();
    await expect(sent).resolves.toMatchObject({ accepted: ['rcpt@example.com'] });
  });
});

describe('verify', () => {
  it('resolves true, or calls back with (null, true)', async () => {
    const { transporter } = transport();
    await expect(transporter.verify()).resolves.toBe(true);
    const result = await new Promise<unknown[]>((resolve) => transporter.verify((...args: unknown[]) => resolve(args)));
    expect(result).toEqual([null, true]);
  });

  it('fails with the SluiceError that stopped it (bad credentials, no server)', async () => {
    const { transporter } = transport({ auth: { user: 'alice', pass: 'wrong' }, allowInsecureAuth: true });
    await expect(transporter.verify()).rejects.toMatchObject({ code: 'EAUTH', responseCode: 535 });
    const good = transport({ auth: { user: 'alice', pass: 'secret' }, allowInsecureAuth: true }).transporter;
    await expect(good.verify()).resolves.toBe(true);
    const err = await new Promise((resolve) => transport({ port: 1 }).transporter.verify((e) => resolve(e)));
    expect(err).toMatchObject({ code: 'ECONNECTION' });
  });
});

describe('close, isIdle and idle', () => {
  it('close() drains every accepted message, then QUITs; later sends fail with ECLOSED', async () => {
    server.configure({ rtt: 10 });
    const { transport: t, transporter } = transport({ maxConnections: 2 });
    const sends = Array.from({ length: 30 }, (_, i) => transporter.sendMail(mail(100 + i)));
    // Some are still being rendered when close() is called: they must not be lost.
    await transporter.close();
    const infos = await Promise.all(sends);
    expect(infos.every((i) => i.accepted.length === 1)).toBe(true);
    expect(server.inbox.messages).toHaveLength(30);
    await until(() => server.openConnections === 0);
    expect(server.connections.every((c) => c.byCommand.QUIT === 1)).toBe(true);
    await expect(transporter.sendMail(mail(200))).rejects.toMatchObject({ code: 'ECLOSED' });
    expect(t.isIdle()).toBe(false);
  });

  it('close({ force: true }) destroys an owned pool at once', async () => {
    server.configure({ rtt: 50 });
    const { transporter } = transport({ maxConnections: 1 });
    const sends = Array.from({ length: 5 }, (_, i) =>
      transporter.sendMail(mail(300 + i)).then(
        () => 'delivered',
        (e) => e.code,
      ),
    );
    await new Promise((r) => setTimeout(r, 20));
    await transporter.close({ force: true });
    const outcomes = await Promise.all(sends);
    // The only connection was still opening (a 50 ms round trip): everything was queued and fails at once.
    expect(outcomes).toEqual(Array(5).fill('ECLOSED'));
    expect(server.inbox.messages).toHaveLength(0);
  });

  it('close({ force: true }) also stops messages still being rendered; a plain close() waits for them', async () => {
    const { transporter } = transport();
    const slow = new PassThrough();
    const pending = transporter.sendMail(mail(310, { attachments: [{ filename: 'slow.txt', content: slow }] })).catch((e) => e);
    await new Promise((r) => setTimeout(r, 20));
    await transporter.close({ force: true });
    expect(await pending).toMatchObject({ code: 'ECLOSED' });

    const second = transport().transporter;
    const slow2 = new PassThrough();
    const sent = second.sendMail(mail(311, { attachments: [{ filename: 'slow.txt', content: slow2 }] }));
    await new Promise((r) => setTimeout(r, 20));
    const closed = second.close();
    slow2.end('finally here');
    await closed;
    await expect(sent).resolves.toMatchObject({ accepted: ['rcpt@example.com'] });
    expect(server.inbox.messages[0]!.raw!.toString()).toContain(Buffer.from('finally here').toString('base64'));
  });

  it("emits 'idle' once ready, is not idle at highWaterMark, and emits 'idle' again when there is room", async () => {
    server.configure({ rtt: 20 });
    const { transport: t, transporter } = transport({ maxConnections: 1, highWaterMark: 3 });
    await once(transporter, 'idle');
    expect(transporter.isIdle()).toBe(true);
    const sends = Array.from({ length: 6 }, (_, i) => transporter.sendMail(mail(400 + i)));
    await until(() => !t.isIdle());
    expect(transporter.isIdle()).toBe(false);
    await once(transporter, 'idle');
    expect(transporter.isIdle()).toBe(true);
    await Promise.all(sends);
  });

  it("supports nodemailer's idle-driven sending loop", async () => {
    const { transporter } = transport({ maxConnections: 2, highWaterMark: 5 });
    const queue = Array.from({ length: 40 }, (_, i) => mail(500 + i));
    const results: Promise<unknown>[] = [];
    let maxQueued = 0;
    await new Promise<void>((resolve) => {
      transporter.on('idle', () => {
        while (transporter.isIdle() && queue.length > 0) results.push(transporter.sendMail(queue.shift()!));
        if (queue.length === 0) resolve();
      });
      const t = transporter.transporter as SluiceTransport;
      t.pool.on('sent', () => {
        maxQueued = Math.max(maxQueued, t.pool.stats.queued);
      });
    });
    await Promise.all(results);
    expect(server.inbox.messages).toHaveLength(40);
    expect(maxQueued).toBeLessThanOrEqual(5);
  });
});

describe('a shared pool ({ pool })', () => {
  it('backs several transports; closing a transport leaves the pool open', async () => {
    const pool = createPool({ host: server.host, port: server.port, maxConnections: 2 });
    const a = nodemailer.createTransport(sluiceTransport({ pool }));
    const b = nodemailer.createTransport(sluiceTransport({ pool }));
    expect((a.transporter as SluiceTransport).ownsPool).toBe(false);
    await Promise.all([
      a.sendMail(mail(600)),
      b.sendMail(mail(601)),
      pool.send({ envelope: { from: 'core@example.com', to: ['x@example.com'] }, body: 'Subject: core\r\n\r\nhi\r\n' }),
    ]);
    const closing = a.close();
    const late = b.sendMail(mail(602));
    await closing;
    await expect(a.sendMail(mail(603))).rejects.toMatchObject({ code: 'ECLOSED' });
    // The pool and the other transport still work; nothing was QUIT by the transport.
    await late;
    await pool.send({ envelope: { from: 'core@example.com', to: ['y@example.com'] }, body: 'Subject: core 2\r\n\r\nhi\r\n' });
    expect(pool.stats.connections).toBeGreaterThan(0);
    expect(pool.listenerCount('idle')).toBe(1); // b's
    await b.close();
    expect(pool.listenerCount('idle')).toBe(0);
    expect(pool.stats.connections).toBeGreaterThan(0);
    await pool.close();
    expect(server.inbox.messages).toHaveLength(5);
  });

  it('refuses pool options next to { pool }, and bad maxBufferSize', () => {
    const pool = createPool({ host: server.host, port: server.port });
    expect(() => sluiceTransport({ pool, host: 'other' } as unknown as SluiceTransportOptions)).toThrow(/either pool options or \{ pool \}/);
    expect(() => sluiceTransport({ pool, maxBufferSize: -1 })).toThrow(expect.objectContaining({ code: 'EOPTIONS' }));
    expect(() => sluiceTransport({ host: server.host, bogus: true } as unknown as SluiceTransportOptions)).toThrow(
      expect.objectContaining({ code: 'EOPTIONS' }),
    );
    return pool.close();
  });
});

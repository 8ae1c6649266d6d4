import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type ErrorKind, type SluiceError, createPool, httpErrorFor, isSluiceError } from '../src/index.js';
import { message, pool, server } from './helpers.js';

/** What a failed call threw, whatever it was. */
async function caught(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

interface Case {
  name: string;
  run: () => Promise<unknown>;
  code: string;
  kind: ErrorKind;
  status: number;
  retryAfter?: string;
  reply?: { responseCode: number; enhancedCode: string; command: string };
}

const cases: Case[] = [
  {
    name: 'an invalid address, refused before the wire',
    run: async () => pool(await server()).send(message(0, { to: ['bad\r\nRCPT TO:<x@example.com>'] })),
    code: 'EENVELOPE',
    kind: 'input',
    status: 400,
  },
  {
    name: 'a UTF-8 address the server cannot take (no SMTPUTF8)',
    run: async () => pool(await server({ extensions: { smtpUtf8: false } })).send(message(0, { to: ['josé@example.com'] })),
    code: 'ECAPABILITY',
    kind: 'input',
    status: 400,
  },
  {
    name: 'a send aborted before the wire',
    run: async () => pool(await server()).send(message(0), { signal: AbortSignal.abort() }),
    code: 'EABORT',
    kind: 'input',
    status: 400,
  },
  {
    name: 'a message that cannot be composed (an attachment that does not exist)',
    run: async () =>
      pool(await server()).sendMail({ from: 'a@example.com', to: 'b@example.com', text: 'x', attachments: [{ path: '/nonexistent/sluice-test-file' }] }),
    code: 'EMESSAGE',
    kind: 'input',
    status: 400,
  },
  {
    name: 'every recipient refused with 550',
    run: async () => pool(await server({ faults: [{ command: 'RCPT', reply: '550 5.1.1 No such user' }] })).send(message(0)),
    code: 'EENVELOPE',
    kind: 'refused',
    status: 422,
    reply: { responseCode: 550, enhancedCode: '5.1.1', command: 'RCPT' },
  },
  {
    name: 'the content refused with 554',
    run: async () =>
      pool(await server({ extensions: { chunking: false }, faults: [{ command: 'DOT', reply: '554 5.6.0 Message rejected' }] })).send(message(0)),
    code: 'EMESSAGE',
    kind: 'refused',
    status: 422,
    reply: { responseCode: 554, enhancedCode: '5.6.0', command: 'DOT' },
  },
  {
    name: 'a 451 to MAIL, retries off',
    run: async () => pool(await server({ faults: [{ command: 'MAIL', reply: '451 4.3.0 Busy' }] }), { retry: false }).send(message(0)),
    code: 'EENVELOPE',
    kind: 'transient',
    status: 503,
    retryAfter: '30',
    reply: { responseCode: 451, enhancedCode: '4.3.0', command: 'MAIL' },
  },
  {
    name: 'a server that drops every connection',
    run: async () => pool(await server({ faults: [{ command: 'CONNECT', action: 'drop' }] }), { retry: false }).send(message(0)),
    code: 'ECONNECTION',
    kind: 'transient',
    status: 503,
    retryAfter: '30',
  },
  {
    name: 'a server that never greets, verify({ timeout })',
    run: async () => pool(await server({ faults: [{ command: 'CONNECT', action: 'stall' }] })).verify({ timeout: 100 }),
    code: 'ETIMEDOUT',
    kind: 'transient',
    status: 503,
    retryAfter: '30',
  },
  {
    name: 'the connection lost after the final "."',
    run: async () => pool(await server({ extensions: { chunking: false }, faults: [{ command: 'DOT', action: 'drop' }] })).send(message(0)),
    code: 'EUNKNOWN',
    kind: 'unknown',
    status: 502,
  },
  {
    name: 'credentials refused with 535',
    run: async () =>
      pool(await server({ requireAuth: true, users: { user: 'right' } }), { auth: { user: 'user', pass: 'hunter2' }, allowInsecureAuth: true }).send(
        message(0),
      ),
    code: 'EAUTH',
    kind: 'config',
    status: 500,
  },
  {
    name: 'TLS required and not offered',
    run: async () => pool(await server(), { requireTLS: true }).send(message(0)),
    code: 'ETLS',
    kind: 'config',
    status: 500,
  },
  {
    name: 'an invalid option',
    run: async () => createPool({ host: 'localhost', maxConnections: -1 }),
    code: 'EOPTIONS',
    kind: 'config',
    status: 500,
  },
  {
    name: 'a send after close()',
    run: async () => {
      const p = pool(await server());
      await p.close();
      return p.send(message(0));
    },
    code: 'ECLOSED',
    kind: 'transient',
    status: 503,
  },
  {
    name: 'a send beyond maxQueued',
    run: async () => {
      const p = pool(await server(), { maxQueued: 1 });
      const first = p.send(message(0));
      const err = await p.send(message(1)).catch((e) => e);
      await first;
      throw err;
    },
    code: 'EQUEUEFULL',
    kind: 'transient',
    status: 503,
    retryAfter: '1',
  },
];

describe('every SluiceError has a kind, and httpErrorFor maps it (real servers)', () => {
  it.each(cases)('$name: $code is $kind, HTTP $status', async (c) => {
    const err = (await caught(c.run)) as SluiceError;
    expect(isSluiceError(err)).toBe(true);
    expect(err.code).toBe(c.code);
    expect(err.kind).toBe(c.kind);
    const answer = httpErrorFor(err);
    expect(answer.status).toBe(c.status);
    expect(answer.headers['retry-after']).toBe(c.retryAfter);
    expect(answer.body.error).toMatchObject({ code: c.code, kind: c.kind });
    if (c.reply) expect(answer.body.error).toMatchObject(c.reply);
    if (c.kind === 'config') {
      // The details of the service's own setup stay in its logs.
      expect(answer.body.error.message).toBe('The mail service is misconfigured');
      expect(Object.keys(answer.body.error).filter((k) => ['responseCode', 'enhancedCode', 'command'].includes(k))).toEqual([]);
    }
    // Never a secret: not the password, not its base64 in an AUTH line.
    const json = JSON.stringify(answer);
    expect(json).not.toContain('hunter2');
    expect(json).not.toContain(Buffer.from('\0user\0hunter2').toString('base64'));
  });

  it('answers 500 EINTERNAL with a generic message for anything that is not a SluiceError', () => {
    for (const thrown of [new Error('connect to db://admin:s3cret@db failed'), 'a string', null, { code: 'EAUTH' }]) {
      const answer = httpErrorFor(thrown);
      expect(answer).toEqual({ status: 500, headers: {}, body: { error: { code: 'EINTERNAL', kind: 'internal', message: 'Internal error' } } });
    }
  });

  it('names the refused recipients, each with its reply', async () => {
    const s = await server({ faults: [{ command: 'RCPT', reply: '550 5.1.1 No such user' }] });
    const answer = httpErrorFor(await caught(() => pool(s, { retry: false }).send(message(0, { to: ['gone@example.com', 'left@example.com'] }))));
    expect(answer.status).toBe(422);
    expect(answer.body.error.rejected).toEqual([
      { address: 'gone@example.com', code: 550, enhancedCode: '5.1.1', response: '550 5.1.1 No such user' },
      { address: 'left@example.com', code: 550, enhancedCode: '5.1.1', response: '550 5.1.1 No such user' },
    ]);
  });

  it('keeps a long multi-line server reply to one bounded line', async () => {
    const text = `Rejected ${'x'.repeat(900)}`;
    const s = await server({ faults: [{ command: 'RCPT', reply: `550 5.7.1 ${text}` }] });
    const answer = httpErrorFor(await caught(() => pool(s).send(message(0))));
    expect(answer.body.error.message.length).toBeLessThanOrEqual(500);
    expect(answer.body.error.message).not.toMatch(/[\r\n]/);
  });
});

describe('error class names', () => {
  it('util.inspect and the stack print SluiceError and SmtpReplyError', async () => {
    const s = await server({ faults: [{ command: 'RCPT', reply: '550 5.1.1 No such user' }] });
    const reply = (await caught(() => pool(s).send(message(0)))) as SluiceError;
    expect(reply.name).toBe('SmtpReplyError');
    expect(reply.constructor.name).toBe('SmtpReplyError');
    expect(inspect(reply).split('\n')[0]).toMatch(/^SmtpReplyError: /);
    const plain = (await caught(async () => createPool({ host: 'localhost', port: 0 }))) as SluiceError;
    expect(plain.name).toBe('SluiceError');
    expect(inspect(plain).split('\n')[0]).toMatch(/^SluiceError: port must be/);
    expect(plain.stack?.split('\n')[0]).toMatch(/^SluiceError: /);
  });
});

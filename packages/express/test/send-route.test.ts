import express from 'express';
import { simpleParser } from 'mailparser';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { SendRouteOptions, SluiceMiddleware } from '../src/index.js';
import { contentFault, mailer, server, unreachable } from './helpers.js';

function app(m: SluiceMiddleware, options?: SendRouteOptions, json = false) {
  const a = express();
  if (json) a.use(express.json());
  a.use(m);
  a.post('/mail', m.sendRoute(options));
  return a;
}

const mail = { from: 'app@example.com', to: 'alice@example.com', subject: 'Hello', text: 'Hi Alice', html: '<p>Hi Alice</p>' };

describe('sendRoute(): delivered', () => {
  it('sends a JSON message and answers 202 with the message id and accepted recipients', async () => {
    const s = await server();
    const res = await request(app(mailer(s)))
      .post('/mail')
      .send(mail)
      .expect(202);
    expect(res.body).toMatchObject({ outcome: 'delivered', accepted: ['alice@example.com'], rejected: [], pending: [] });
    expect(res.body.messageId).toMatch(/^<.+@.+>$/);
    const [received] = await s.inbox.waitFor(1);
    expect(received.from).toBe('app@example.com');
    expect(received.to).toEqual(['alice@example.com']);
    const parsed = await simpleParser(received.raw!);
    expect(parsed.subject).toBe('Hello');
    expect(parsed.text?.trim()).toBe('Hi Alice');
    expect(parsed.html).toBe('<p>Hi Alice</p>');
    expect(`<${parsed.messageId?.replace(/^<|>$/g, '')}>`).toBe(res.body.messageId);
  });

  it('works behind express.json() too, with cc, bcc and several recipients', async () => {
    const s = await server();
    await request(app(mailer(s), {}, true))
      .post('/mail')
      .send({ ...mail, to: ['a@example.com', 'B <b@example.com>'], cc: 'c@example.com', bcc: ['d@example.com'], replyTo: 'r@example.com' })
      .expect(202);
    const [received] = await s.inbox.waitFor(1);
    expect(received.to.sort()).toEqual(['a@example.com', 'b@example.com', 'c@example.com', 'd@example.com']);
    // Bcc travels in the envelope only: no header names it (RFC 5322 §3.6.3). Parsed, not grepped:
    // a random Message-ID may well end in "d@example.com".
    const parsed = await simpleParser(received.raw!);
    expect(parsed.headers.has('bcc')).toBe(false);
    const headerAddresses = [parsed.to, parsed.cc, parsed.replyTo]
      .flatMap((field) => (Array.isArray(field) ? field : field ? [field] : []))
      .flatMap((field) => field.value.map((a) => a.address));
    expect(headerAddresses.sort()).toEqual(['a@example.com', 'b@example.com', 'c@example.com', 'r@example.com']);
  });

  it('answers 202 with the refused recipients when some were accepted', async () => {
    const s = await server({ faults: [{ command: 'RCPT', recipient: 'gone@example.com', reply: '550 5.1.1 No such user' }] });
    const res = await request(app(mailer(s)))
      .post('/mail')
      .send({ ...mail, to: ['alice@example.com', 'gone@example.com'] })
      .expect(202);
    expect(res.body.accepted).toEqual(['alice@example.com']);
    expect(res.body.rejected).toEqual([{ address: 'gone@example.com', code: 550, enhancedCode: '5.1.1', response: '550 5.1.1 No such user' }]);
  });

  it('fixes the sender with { from }, and transform() shapes the message', async () => {
    const s = await server();
    const m = mailer(s);
    const a = app(m, { from: 'noreply@example.com', transform: (input) => ({ ...input, text: `${input.text}\n-- sent by sluice` }) });
    await request(a).post('/mail').send({ to: 'x@example.com', text: 'body' }).expect(202);
    const [received] = await s.inbox.waitFor(1);
    expect(received.from).toBe('noreply@example.com');
    expect((await simpleParser(received.raw!)).text?.trim()).toBe('body\n-- sent by sluice');
    const res = await request(a).post('/mail').send({ from: 'ceo@example.com', to: 'x@example.com', text: 'body' }).expect(400);
    expect(res.body.error).toMatchObject({ code: 'EINVALID', message: '"from" is set by the server' });
  });

  it("passes transform()'s errors to next(): the app's error handling decides", async () => {
    const s = await server();
    const m = mailer(s);
    const a = app(m, {
      transform: () => {
        throw Object.assign(new Error('Not allowed'), { status: 403 });
      },
    });
    await request(a).post('/mail').send(mail).expect(403);
    expect(s.inbox.messages).toHaveLength(0);
  });
});

describe('sendRoute(): invalid input is 400 and never reaches the server', () => {
  const cases: Array<[string, unknown, string]> = [
    ['an array', [mail], 'Expected a JSON object'],
    ['no recipient', { ...mail, to: undefined }, '"to" is required'],
    ['an empty recipient list', { ...mail, to: [] }, '"to" is required'],
    ['no sender', { ...mail, from: undefined }, '"from" is required'],
    ['no content', { ...mail, text: undefined, html: undefined }, '"text" or "html" is required'],
    ['an unknown field (attachments could read files)', { ...mail, attachments: [{ path: '/etc/passwd' }] }, 'Unknown field(s): attachments'],
    ['content that is not a string', { ...mail, text: { path: '/etc/passwd' } }, '"text" must be a string'],
    ['a recipient that is not a string', { ...mail, to: [{ address: 'a@example.com' }] }, '"to" must be an address'],
    ['too many recipients', { ...mail, to: 'a@example.com, b@example.com', cc: ['c@example.com', 'd@example.com'] }, 'At most 3 recipients'],
  ];
  for (const [name, body, message] of cases) {
    it(`refuses ${name}`, async () => {
      const s = await server();
      const res = await request(app(mailer(s), { maxRecipients: 3 }))
        .post('/mail')
        .send(body as object)
        .expect(400);
      expect(res.body.error).toMatchObject({ code: 'EINVALID', kind: 'input', outcome: 'rejected' });
      expect(res.body.error.message).toContain(message);
      expect(s.connections).toHaveLength(0);
    });
  }

  it('refuses a body that is not JSON, or not valid JSON', async () => {
    const s = await server();
    const a = app(mailer(s));
    const text = await request(a).post('/mail').set('Content-Type', 'text/plain').send('hello').expect(400);
    expect(text.body.error.code).toBe('EINVALID');
    const broken = await request(a).post('/mail').set('Content-Type', 'application/json').send('{"to":').expect(400);
    expect(broken.body.error).toMatchObject({ code: 'EINVALID', message: 'The body is not valid JSON' });
    const big = await request(app(mailer(s), { limit: 100 }))
      .post('/mail')
      .send({ ...mail, text: 'x'.repeat(200) })
      .expect(413);
    expect(big.body.error).toMatchObject({ code: 'EINVALID', message: 'The body is too large' });
  });

  it('refuses an address sluice cannot send to (checked before the wire)', async () => {
    const s = await server();
    const res = await request(app(mailer(s)))
      .post('/mail')
      .send({ ...mail, from: 'bad address@' })
      .expect(400);
    expect(res.body.error).toMatchObject({ code: 'EENVELOPE', kind: 'input', outcome: 'rejected' });
    expect(s.inbox.messages).toHaveLength(0);
  });
});

describe('sendRoute(): SMTP failures', () => {
  it('maps a refused recipient (550 to RCPT) to 422 with the reply', async () => {
    const s = await server({ faults: [{ command: 'RCPT', reply: '550 5.1.1 No such user' }] });
    const res = await request(app(mailer(s)))
      .post('/mail')
      .send(mail)
      .expect(422);
    expect(res.body.error).toMatchObject({
      code: 'EENVELOPE',
      kind: 'refused',
      outcome: 'rejected',
      command: 'RCPT',
      responseCode: 550,
      enhancedCode: '5.1.1',
      rejected: [{ address: 'alice@example.com', code: 550, enhancedCode: '5.1.1' }],
    });
    expect(res.headers['retry-after']).toBeUndefined();
  });

  it('maps refused content (554 to the final dot) to 422', async () => {
    const s = await server({ faults: contentFault({ reply: '554 5.7.1 Looks like spam' }) });
    const res = await request(app(mailer(s)))
      .post('/mail')
      .send(mail)
      .expect(422);
    expect(res.body.error).toMatchObject({ code: 'EMESSAGE', kind: 'refused', outcome: 'rejected', responseCode: 554, enhancedCode: '5.7.1' });
    expect(res.body.error.message).toMatch(/554 5\.7\.1 Looks like spam$/);
  });

  it('maps a transient refusal (451 to MAIL, no retries) to 503 with Retry-After', async () => {
    const s = await server({ faults: [{ command: 'MAIL', reply: '451 4.3.0 Busy' }] });
    const res = await request(app(mailer(s), { retryAfter: 7 }))
      .post('/mail')
      .send(mail)
      .expect(503);
    expect(res.headers['retry-after']).toBe('7');
    expect(res.body.error).toMatchObject({ code: 'EENVELOPE', kind: 'transient', outcome: 'failed', command: 'MAIL', responseCode: 451, enhancedCode: '4.3.0' });
  });

  it('maps a server it cannot reach to 503 with Retry-After, without naming the host', async () => {
    const target = await unreachable();
    const res = await request(app(mailer(target)))
      .post('/mail')
      .send(mail)
      .expect(503);
    expect(res.headers['retry-after']).toBe('30');
    expect(res.body.error).toMatchObject({ code: 'ECONNECTION', kind: 'transient', outcome: 'failed' });
    expect(JSON.stringify(res.body)).not.toContain(String(target.port));
  });

  it('maps a lost connection after the content (outcome unknown) to 502, never to a retryable answer', async () => {
    const s = await server({ faults: contentFault({ action: 'drop', deliver: true }) });
    const res = await request(app(mailer(s)))
      .post('/mail')
      .send(mail)
      .expect(502);
    expect(res.body.error).toMatchObject({ code: 'EUNKNOWN', kind: 'unknown', outcome: 'unknown' });
    expect(res.headers['retry-after']).toBeUndefined();
    expect(s.inbox.messages).toHaveLength(1);
  });

  it('maps refused credentials to 500 (the service is misconfigured) and leaks neither them nor the reply', async () => {
    const s = await server({ users: { alice: 'right-password' } });
    const m = mailer(s, { auth: { user: 'alice', pass: 'wrong-password' }, allowInsecureAuth: true });
    const res = await request(app(m)).post('/mail').send(mail).expect(500);
    expect(res.body.error).toMatchObject({ code: 'EAUTH', kind: 'config', outcome: 'failed', message: 'The mail service is misconfigured' });
    expect(res.body.error.responseCode).toBeUndefined();
    const text = JSON.stringify(res.body);
    for (const secret of ['alice', 'password', '535', String(s.port)]) expect(text).not.toContain(secret);
  });
});

describe('sendRoute(): the client hangs up', () => {
  it('withdraws a message still queued, so that the client retrying does not send it twice', async () => {
    const s = await server({ faults: [{ command: 'CONNECT', action: 'delay', delayMs: 400 }] });
    const m = mailer(s);
    await expect(request(app(m)).post('/mail').send(mail).timeout(100)).rejects.toThrow(/timeout/i);
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(m.stats).toMatchObject({ failed: 1, delivered: 0, queued: 0 });
    expect(s.inbox.messages).toHaveLength(0);
  });
});

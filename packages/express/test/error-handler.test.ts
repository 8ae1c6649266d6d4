import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { type ErrorLogEntry, sluiceErrorHandler } from '../src/index.js';
import { expectBadAddressAnswer, expectRefusedRecipientAnswer, type HttpAnswer } from '../../../test-shared/http-answers.js';
import { mailer, server } from './helpers.js';

const answer = (res: request.Response): HttpAnswer => ({ status: res.status, contentType: res.headers['content-type'], body: res.body });

async function setup() {
  const smtp = await server({ faults: [{ command: 'RCPT', recipient: 'gone@example.com', reply: '550 5.1.1 No such user' }] });
  const m = mailer(smtp);
  const logged: ErrorLogEntry[] = [];
  const app = express();
  app.use(express.json());
  app.use(m);
  app.post('/send', async (req, res) => {
    const { messageId } = await req.mailer.sendMail({ from: 'app@example.com', to: req.body.to, subject: 'Hi', text: 'Hi' });
    res.status(202).json({ messageId });
  });
  app.get('/boom', () => {
    throw new Error('database password is hunter2');
  });
  app.use(sluiceErrorHandler({ log: (entry) => logged.push(entry) }));
  return { app, smtp, logged };
}

describe('sluiceErrorHandler()', () => {
  it('answers a bad address with 400 and the JSON error shape, not an HTML page with a stack trace, before anything is sent', async () => {
    const { app, smtp, logged } = await setup();
    const res = await request(app).post('/send').send({ to: 'ada@' }).expect(400);
    expectBadAddressAnswer(answer(res));
    expect(res.text).not.toMatch(/<html|<pre>|at .+\(.+:\d+:\d+\)/i);
    expect(smtp.connections).toHaveLength(0);
    expect(logged).toEqual([{ route: 'POST /send', status: 400, code: 'EENVELOPE', error: expect.objectContaining({ code: 'EENVELOPE' }) }]);
  });

  it('answers a refused recipient with 422 and the reply codes', async () => {
    const { app } = await setup();
    const res = await request(app).post('/send').send({ to: 'gone@example.com' }).expect(422);
    expectRefusedRecipientAnswer(answer(res));
  });

  it('answers an unreachable server with 503 and retry-after', async () => {
    const smtp = await server({ faults: [{ command: 'CONNECT', action: 'drop' }] });
    const m = mailer(smtp, { retry: false });
    const app = express();
    app.use(m);
    app.get('/send', async (req, res) => {
      await req.mailer.sendMail({ from: 'app@example.com', to: 'ada@example.com', text: 'x' });
      res.end();
    });
    app.use(sluiceErrorHandler({ log: false }));
    const res = await request(app).get('/send').expect(503);
    expect(res.headers['retry-after']).toBe('30');
    expect(res.body.error).toMatchObject({ code: 'ECONNECTION', kind: 'transient', outcome: 'failed' });
  });

  it('answers malformed JSON with 400 EINVALID, and any other error with a generic 500 that shows nothing of it', async () => {
    const { app, logged } = await setup();
    const bad = await request(app).post('/send').set('content-type', 'application/json').send('{"to":').expect(400);
    expect(bad.body).toEqual({ error: { code: 'EINVALID', kind: 'input', message: expect.any(String) } });
    const boom = await request(app).get('/boom').expect(500);
    expect(boom.body).toEqual({ error: { code: 'EINTERNAL', kind: 'internal', message: 'Internal error' } });
    expect(boom.text).not.toContain('hunter2');
    expect(logged.map(({ route, status, code }) => ({ route, status, code }))).toEqual([
      { route: 'POST /send', status: 400, code: 'EINVALID' },
      { route: 'GET /boom', status: 500, code: 'EINTERNAL' },
    ]);
    expect((logged[1]!.error as Error).message).toContain('hunter2');
  });
});

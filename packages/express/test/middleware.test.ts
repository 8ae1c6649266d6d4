import { createPool, SluiceError } from '@sluice/core';
import express, { type NextFunction, type Request, type Response } from 'express';
import { simpleParser } from 'mailparser';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { sluice } from '../src/index.js';
import { mailer, pool, poolOptions, server } from './helpers.js';

describe('app.use(mailer)', () => {
  it('sets req.mailer and res.locals.mailer, and both send', async () => {
    const s = await server();
    const m = mailer(s);
    const app = express();
    app.use(m);
    app.post('/send', async (req, res) => {
      const first = await req.mailer.sendMail({ from: 'app@example.com', to: 'a@example.com', subject: 'From req', text: 'one' });
      const second = await res.locals.mailer.send({
        envelope: { from: 'app@example.com', to: ['b@example.com'] },
        body: 'From: app@example.com\r\nTo: b@example.com\r\nSubject: From locals\r\n\r\ntwo\r\n',
      });
      res.json({ same: req.mailer === res.locals.mailer, pool: req.mailer.pool === m.pool, ids: [first.outcome, second.outcome], stats: req.mailer.stats });
    });

    const res = await request(app).post('/send').expect(200);
    expect(res.body.same).toBe(true);
    expect(res.body.pool).toBe(true);
    expect(res.body.ids).toEqual(['delivered', 'delivered']);
    expect(res.body.stats.delivered).toBe(2);
    const inbox = await s.inbox.waitFor(2);
    expect(inbox.map((msg) => msg.to)).toEqual([['a@example.com'], ['b@example.com']]);
    expect((await simpleParser(inbox[0].raw!)).subject).toBe('From req');
  });

  it('carries the same API outside requests', async () => {
    const s = await server();
    const m = mailer(s);
    const result = await m.sendMail({ from: 'job@example.com', to: 'c@example.com', subject: 'Cron', text: 'x' });
    expect(result.outcome).toBe('delivered');
    expect(m.stats.delivered).toBe(1);
    await expect(m.verify()).resolves.toMatchObject({ encrypted: false, authenticated: false });
    expect(typeof m).toBe('function');
  });

  it('lets a rejected send reach the error handler by itself (Express 5)', async () => {
    const s = await server({ faults: [{ command: 'RCPT', reply: '550 5.1.1 No such user' }] });
    const app = express();
    app.use(mailer(s));
    app.post('/send', async (req, res) => {
      await req.mailer.sendMail({ from: 'app@example.com', to: 'nobody@example.com', text: 'x' });
      res.sendStatus(204);
    });
    app.use((err: SluiceError, _req: Request, res: Response, _next: NextFunction) => {
      res.status(418).json({ code: err.code, outcome: err.outcome, responseCode: err.responseCode });
    });
    const res = await request(app).post('/send').expect(418);
    expect(res.body).toEqual({ code: 'EENVELOPE', outcome: 'rejected', responseCode: 550 });
  });

  it('refuses bad options', () => {
    expect(() => sluice({ pool: undefined as never })).toThrow(expect.objectContaining({ code: 'EOPTIONS' }));
    expect(() => sluice({ host: 'localhost', bogus: 1 } as never)).toThrow(SluiceError);
  });
});

describe('mailer.close()', () => {
  it('drains a pool it created: in-flight messages are delivered, then the pool is closed', async () => {
    const s = await server({ rtt: 50 });
    const m = sluice(poolOptions(s));
    // send() queues synchronously; sendMail() composes first (see the README on closing).
    const sends = Array.from({ length: 5 }, (_, i) =>
      m.send({ envelope: { from: 'a@example.com', to: [`r${i}@example.com`] }, body: `Subject: ${i}\r\n\r\nHello\r\n` }),
    );
    await m.close();
    const results = await Promise.all(sends);
    expect(results.every((r) => r.outcome === 'delivered')).toBe(true);
    expect(s.inbox.messages).toHaveLength(5);
    expect(m.stats.connections).toBe(0);
    await expect(m.sendMail({ from: 'a@example.com', to: 'late@example.com', text: 'x' })).rejects.toMatchObject({ code: 'ECLOSED' });
  });

  it('leaves a pool passed in open: its owner closes it', async () => {
    const s = await server();
    const p = pool(s);
    const m = sluice({ pool: p });
    expect(m.pool).toBe(p);
    await m.sendMail({ from: 'a@example.com', to: 'r@example.com', text: 'before' });
    await m.close();
    await expect(m.sendMail({ from: 'a@example.com', to: 'r@example.com', text: 'after' })).resolves.toMatchObject({ outcome: 'delivered' });
    await p.close();
    await expect(p.sendMail({ from: 'a@example.com', to: 'r@example.com', text: 'closed' })).rejects.toMatchObject({ code: 'ECLOSED' });
  });

  it('lets one pool back two middlewares', async () => {
    const s = await server();
    const p = createPool(poolOptions(s));
    const a = sluice({ pool: p });
    const b = sluice({ pool: p });
    await Promise.all([
      a.sendMail({ from: 'a@example.com', to: 'x@example.com', text: '1' }),
      b.sendMail({ from: 'a@example.com', to: 'y@example.com', text: '2' }),
    ]);
    expect(a.stats.delivered).toBe(2);
    await Promise.all([a.close(), b.close()]);
    expect(p.stats.connections).toBeGreaterThan(0);
    await p.close();
  });
});

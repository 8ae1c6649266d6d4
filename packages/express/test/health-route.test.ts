import net from 'node:net';
import express from 'express';
import request from 'supertest';
import { describe, expect, it, vi } from 'vitest';
import type { HealthRouteOptions, SluiceMiddleware } from '../src/index.js';
import { mailer, server, unreachable } from './helpers.js';

function app(m: SluiceMiddleware, options?: HealthRouteOptions) {
  const a = express();
  a.get('/health', m.healthRoute(options));
  return a;
}

describe('healthRoute()', () => {
  it('answers 200 up after verify(), and reuses the answer for cacheMs', async () => {
    const s = await server();
    const a = app(mailer(s));
    const first = await request(a).get('/health').expect(200);
    expect(first.body).toMatchObject({ status: 'up', encrypted: false, authenticated: false, stats: { connections: 0 } });
    expect(first.headers['cache-control']).toBe('no-store');
    expect(Date.parse(first.body.checkedAt)).not.toBeNaN();
    const again = await Promise.all([request(a).get('/health'), request(a).get('/health')]);
    expect(again.map((r) => r.body.checkedAt)).toEqual([first.body.checkedAt, first.body.checkedAt]);
    expect(s.connections).toHaveLength(1);
  });

  it('runs one verify() for simultaneous probes, and verifies again once the answer is stale', async () => {
    const s = await server({ rtt: 40 });
    const a = app(mailer(s), { cacheMs: 50 });
    await Promise.all([request(a).get('/health'), request(a).get('/health'), request(a).get('/health')]);
    expect(s.connections).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 60));
    await request(a).get('/health').expect(200);
    expect(s.connections).toHaveLength(2);
  });

  it('answers 503 down with the error code when the server cannot be reached', async () => {
    const res = await request(app(mailer(await unreachable())))
      .get('/health')
      .expect(503);
    expect(res.body).toMatchObject({ status: 'down', error: 'ECONNECTION' });
    expect(JSON.stringify(res.body)).not.toContain('127.0.0.1');
  });

  it('answers 503 down when credentials are refused', async () => {
    const s = await server({ users: { alice: 'secret' } });
    const m = mailer(s, { auth: { user: 'alice', pass: 'nope' }, allowInsecureAuth: true });
    const res = await request(app(m)).get('/health').expect(503);
    expect(res.body).toMatchObject({ status: 'down', error: 'EAUTH' });
  });

  it('answers 503 down after timeoutMs when the server does not answer', async () => {
    const s = await server({ faults: [{ command: 'CONNECT', action: 'stall' }] });
    const started = Date.now();
    const res = await request(app(mailer(s), { timeoutMs: 200 }))
      .get('/health')
      .expect(503);
    expect(res.body).toMatchObject({ status: 'down', error: 'ETIMEDOUT' });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("cuts a timed-out check's connection, so a server that never greets never holds more than one", async () => {
    // A real peer that accepts and stays silent (and, unlike a paused socket, sees the client hang up).
    let open = 0;
    let peak = 0;
    let accepted = 0;
    const silent = net.createServer((socket) => {
      accepted++;
      peak = Math.max(peak, ++open);
      socket.on('close', () => open--);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const a = app(mailer({ host: '127.0.0.1', port: (silent.address() as net.AddressInfo).port }), { timeoutMs: 50, cacheMs: 0 });
      for (let i = 0; i < 3; i++) {
        const res = await request(a).get('/health').expect(503);
        expect(res.body.error).toBe('ETIMEDOUT');
        await vi.waitFor(() => expect(open).toBe(0), { timeout: 5000 });
      }
      expect(accepted).toBe(3);
      expect(peak).toBe(1);
    } finally {
      silent.close();
    }
  });
});

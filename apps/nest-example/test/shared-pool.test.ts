import 'reflect-metadata';
import { Test } from '@nestjs/testing';
import { createPool } from '@sluice/core';
import { sluice } from '@sluice/express';
import { startMockServer } from '@sluice/mock-server';
import { MailerService, SluiceModule } from '@sluice/nestjs';
import { sluiceTransport } from '@sluice/nodemailer';
import express from 'express';
import nodemailer from 'nodemailer';
import request from 'supertest';
import { expect, it } from 'vitest';

// An app that uses Nest, nodemailer and Express at once must not open three sets of connections
// against its provider's account limit: one pool backs all three front-ends.
it('one pool backs the Nest module, the nodemailer transport and the Express middleware', async () => {
  const server = await startMockServer({ rtt: 5, extensions: { starttls: false } });
  const pool = createPool({ host: server.host, port: server.port, maxConnections: 2, maxMessagesPerConnection: 100 });
  let peak = 0;
  pool.on('connect', () => {
    peak = Math.max(peak, server.openConnections);
  });
  try {
    const moduleRef = await Test.createTestingModule({ imports: [SluiceModule.forRoot({ pool })] }).compile();
    await moduleRef.init();
    const nest = moduleRef.get(MailerService);
    const transporter = nodemailer.createTransport(sluiceTransport({ pool }));
    const mailer = sluice({ pool });
    const app = express();
    app.use(mailer);
    app.post('/send/:i', async (req, res) => {
      const result = await req.mailer.sendMail({ from: 'app@example.com', to: `express${req.params.i}@example.com`, subject: 'x', text: 'x' });
      res.json({ outcome: result.outcome });
    });

    const n = 20;
    await Promise.all([
      ...Array.from({ length: n }, (_, i) => nest.sendMail({ from: 'app@example.com', to: `nest${i}@example.com`, subject: 'x', text: 'x' })),
      ...Array.from({ length: n }, (_, i) => transporter.sendMail({ from: 'app@example.com', to: `nodemailer${i}@example.com`, subject: 'x', text: 'x' })),
      ...Array.from({ length: n }, (_, i) => request(app).post(`/send/${i}`).expect(200)),
    ]);

    expect(server.inbox.messages).toHaveLength(3 * n);
    for (const front of ['nest', 'nodemailer', 'express']) {
      expect(server.inbox.messages.filter((m) => m.to[0]!.startsWith(front))).toHaveLength(n);
    }
    // Never more connections than the one budget, and none opened beyond it over the whole run.
    expect(peak).toBeLessThanOrEqual(2);
    expect(server.connections.length).toBeLessThanOrEqual(2);

    // Closing the front-ends leaves the shared pool to its owner.
    await moduleRef.close();
    transporter.close();
    await mailer.close();
    expect((await pool.sendMail({ from: 'app@example.com', to: 'after@example.com', text: 'x' })).outcome).toBe('delivered');
  } finally {
    await pool.close();
    await server.close();
  }
});

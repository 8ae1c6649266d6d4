import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PoolOptions } from '@sluice/core';
import { type SluiceMiddleware, sluice } from '@sluice/express';
import { type MockServer, startMockServer } from '@sluice/mock-server';
import { logSendFailures, smtpFromEnv } from 'example-env';
import { createApp } from './app.js';

export interface Running {
  /** e.g. http://127.0.0.1:3000 */
  url: string;
  /** Where mail goes, without credentials. */
  smtp: string;
  mailer: SluiceMiddleware;
  /** The embedded mock SMTP server, or null when SMTP_HOST is set. */
  mock: MockServer | null;
  /** Stops taking requests, waits for those in progress, drains the mail pool, then stops the mock server. */
  close(): Promise<void>;
}

/**
 * Starts the app from environment variables: PORT (default 3000), MAIL_FROM, and either SMTP_HOST,
 * SMTP_PORT, SMTP_SECURE, SMTP_USER, SMTP_PASS, SMTP_TLS_CA, SMTP_TLS_INSECURE for a real server, or
 * the embedded mock server (MOCK_RTT ms, default 20).
 */
export async function start(env: NodeJS.ProcessEnv = process.env): Promise<Running> {
  let mock: MockServer | null = null;
  let options: PoolOptions | null = smtpFromEnv(env);
  if (!options) {
    mock = await startMockServer({ rtt: Number(env.MOCK_RTT ?? 20), extensions: { starttls: false } });
    options = { host: mock.host, port: mock.port };
  }
  const mailer = sluice(options);
  logSendFailures(mailer.pool);
  const app = createApp({ mailer, from: env.MAIL_FROM || undefined });
  const server = app.listen(Number(env.PORT ?? 3000));
  try {
    await once(server, 'listening');
  } catch (err) {
    await mailer.close();
    await mock?.close();
    throw err;
  }
  const { address, port } = server.address() as AddressInfo;
  const { host, port: smtpPort, secure } = mailer.pool.options.connection;
  const smtp = `${secure ? 'smtps' : 'smtp'}://${host}:${smtpPort}${mock ? ' (embedded mock server)' : ''}`;
  // Responses still to be written once close() is called end their keep-alive connection, so that close() does not
  // wait for the client to drop it.
  const active = new Set<ServerResponse>();
  let closing: Promise<void> | null = null;
  server.on('request', (_req, res: ServerResponse) => {
    if (closing) {
      res.setHeader('Connection', 'close');
      return;
    }
    active.add(res);
    res.once('close', () => active.delete(res));
  });
  return {
    url: `http://${address === '::' || address === '0.0.0.0' ? 'localhost' : address.includes(':') ? `[${address}]` : address}:${port}`,
    smtp,
    mailer,
    mock,
    close: () =>
      (closing ??= new Promise<void>((resolve, reject) => {
        // Finish the requests in progress (their mail included), then drain the pool, then the mock server.
        server.close(() => {
          mailer
            .close()
            .then(() => mock?.close())
            .then(resolve, reject);
        });
        for (const res of active) if (!res.headersSent) res.setHeader('Connection', 'close');
      })),
  };
}

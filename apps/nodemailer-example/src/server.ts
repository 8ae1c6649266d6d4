import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { type MockServer, startMockServer } from '@sluice/mock-server';
import { type SluiceTransport, sluiceTransport } from '@sluice/nodemailer';
import { logSendFailures, smtpFromEnv } from 'example-env';
import nodemailer, { type Transporter } from 'nodemailer';
import { createApp } from './app.js';

export interface Running {
  /** e.g. http://127.0.0.1:3000 */
  url: string;
  transporter: Transporter;
  /** The embedded mock SMTP server, when SMTP_HOST is not set. */
  mock: MockServer | null;
  /** Graceful stop: the HTTP server stops taking requests and finishes those in progress, then the
   * transporter drains and QUITs, then the mock server stops. */
  close(): Promise<void>;
}

type Env = Record<string, string | undefined>;

/** A nodemailer transporter on a sluice pool whose failed sends are logged with their code. */
function transporterFor(options: Parameters<typeof sluiceTransport>[0]): Transporter {
  const transporter = nodemailer.createTransport(sluiceTransport(options));
  logSendFailures((transporter.transporter as unknown as SluiceTransport).pool);
  return transporter;
}

/**
 * SMTP_HOST (with SMTP_PORT, SMTP_USER, SMTP_PASS, SMTP_SECURE, SMTP_TLS_CA, SMTP_TLS_INSECURE) or an
 * embedded mock server (MOCK_RTT ms).
 */
export async function createMailer(env: Env): Promise<{ transporter: Transporter; mock: MockServer | null; description: string }> {
  const options = smtpFromEnv(env);
  if (options) return { transporter: transporterFor(options), mock: null, description: `${options.host}:${options.port}` };
  const rtt = Number(env.MOCK_RTT ?? 20);
  // A long-running demo keeps only the latest messages.
  const mock = await startMockServer({ rtt, inboxLimit: 1000 });
  const transporter = transporterFor({ host: mock.host, port: mock.port, tls: { ca: mock.ca } });
  return { transporter, mock, description: `embedded mock server ${mock.host}:${mock.port} (rtt ${rtt} ms)` };
}

export async function start(env: Env = process.env): Promise<Running & { description: string }> {
  const { transporter, mock, description } = await createMailer(env);
  const app = createApp({ transporter, from: env.MAIL_FROM || undefined });
  const port = Number(env.PORT ?? 3000);
  const server = env.HOST ? app.listen(port, env.HOST) : app.listen(port);
  try {
    await once(server, 'listening');
  } catch (err) {
    await transporter.close();
    await mock?.close();
    throw err;
  }
  const { address, port: listening } = server.address() as AddressInfo;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${address === '::' || address === '0.0.0.0' ? 'localhost' : address.includes(':') ? `[${address}]` : address}:${listening}`,
    transporter,
    mock,
    description,
    close: () =>
      (closing ??= (async () => {
        await new Promise<void>((resolve, reject) => {
          server.close((err) => (err ? reject(err) : resolve()));
          server.closeIdleConnections();
        });
        await transporter.close();
        await mock?.close();
      })()),
  };
}

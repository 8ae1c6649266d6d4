import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type MockServer, type MockServerOptions, startMockServer } from '@sluice/mock-server';
import nodemailer from 'nodemailer';
import { afterEach } from 'vitest';
import { type Relay, type RelayOptions, startRelay } from '../src/index.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  while (cleanups.length) await Promise.resolve(cleanups.pop()!()).catch(() => {});
});
export function onCleanup(f: () => Promise<unknown> | unknown): void {
  cleanups.push(f);
}

export async function tmpDir(prefix = 'sluice-relay-'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export async function upstream(options: MockServerOptions = {}): Promise<MockServer> {
  const server = await startMockServer({ ...options, extensions: { starttls: false, ...options.extensions } });
  onCleanup(() => server.close());
  return server;
}

export interface LogCapture {
  lines: string[];
  text(): string;
  records(): Array<Record<string, unknown>>;
}

export function captureLogger(): { logger: RelayOptions['logger']; log: LogCapture } {
  const lines: string[] = [];
  const mk = (level: string) => (msg: string, fields?: Record<string, unknown>) => lines.push(JSON.stringify({ level, msg, ...fields }));
  return {
    logger: { debug: mk('debug'), info: mk('info'), warn: mk('warn'), error: mk('error') },
    log: { lines, text: () => lines.join('\n'), records: () => lines.map((l) => JSON.parse(l)) },
  };
}

export async function relayTo(server: { port: number }, options: Partial<RelayOptions> = {}): Promise<{ relay: Relay; spoolDir: string; log: LogCapture }> {
  const spoolDir = options.spoolDir ?? (await tmpDir());
  const { logger, log } = captureLogger();
  const relay = await startRelay({
    host: '127.0.0.1',
    port: 0,
    http: { port: 0 },
    hostname: 'relay.test',
    spoolDir,
    upstream: { url: `smtp://127.0.0.1:${server.port}` },
    retryMin: 100,
    retryMax: 400,
    scanInterval: 200,
    logger,
    ...options,
  });
  onCleanup(() => relay.stop());
  return { relay, spoolDir, log };
}

/** A legacy sender: one connection per message, no pooling. */
export function legacySender(port: number, extra: Record<string, unknown> = {}) {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, ...extra });
  onCleanup(() => transport.close());
  return transport;
}

export function waitUntil(pred: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const check = async () => {
      if (await pred()) return resolve();
      if (Date.now() - start > timeoutMs) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(check, 25);
    };
    void check();
  });
}

/** A raw SMTP client: one command, one reply (multi-line replies joined). */
export async function rawSmtp(port: number, host = '127.0.0.1') {
  const net = await import('node:net');
  const socket = net.connect({ port, host });
  onCleanup(() => socket.destroy());
  let buf = '';
  const waiters: Array<(reply: string) => void> = [];
  const replies: string[] = [];
  let current: string[] = [];
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    buf += chunk;
    let nl = buf.indexOf('\n');
    while (nl !== -1) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      current.push(line);
      if (/^\d{3}( |$)/.test(line)) {
        const reply = current.join('\n');
        current = [];
        const w = waiters.shift();
        if (w) w(reply);
        else replies.push(reply);
      }
      nl = buf.indexOf('\n');
    }
  });
  socket.on('error', () => {});
  const next = () => new Promise<string>((resolve) => (replies.length ? resolve(replies.shift()!) : waiters.push(resolve)));
  const greeting = await next();
  return {
    socket,
    greeting,
    next,
    async cmd(line: string): Promise<string> {
      socket.write(`${line}\r\n`);
      return next();
    },
    write(data: string | Buffer) {
      socket.write(data);
    },
  };
}

/** One HTTP request with exactly the headers given (fetch would not let a test set Host). */
export function httpCall(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: unknown }> {
  return import('node:http').then(
    (http) =>
      new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (text += c));
          res.on('end', () => {
            let body: unknown = text;
            if (String(res.headers['content-type']).startsWith('application/json')) body = JSON.parse(text);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
          });
        });
        req.on('error', reject);
        req.end();
      }),
  );
}

/** A self-signed certificate for localhost and 127.0.0.1 (openssl), the key file mode 0600. */
export async function selfSigned(): Promise<{ key: string; cert: string; keyFile: string; certFile: string }> {
  const dir = await tmpDir();
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  await chmod(keyFile, 0o600);
  return { key: await readFile(keyFile, 'utf8'), cert: await readFile(certFile, 'utf8'), keyFile, certFile };
}

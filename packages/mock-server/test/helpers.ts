import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { delimiter, join } from 'node:path';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { type MockServer, type MockServerOptions, startMockServer } from '../src/index.js';

export interface Reply {
  code: number;
  /** Text of each line, without the code and separator. */
  lines: string[];
  /** The last line's text. */
  text: string;
  /** The enhanced status code of the last line, if any. */
  enhanced: string | null;
}

/**
 * A raw SMTP client for tests: writes exactly the bytes given, in one write, and parses replies as
 * they come. `reads` counts the socket's 'data' events.
 */
export class RawClient {
  reads = 0;
  closed = false;
  private text = '';
  private replies: Reply[] = [];
  private waiters: Array<() => void> = [];
  private closeWaiters: Array<() => void> = [];

  private constructor(private socket: Socket | TLSSocket) {
    this.listen(socket);
  }

  static async connect(port: number, host = '127.0.0.1', options: { tls?: { ca: string } } = {}): Promise<RawClient> {
    const socket: Socket | TLSSocket = options.tls ? tlsConnect({ port, host, ca: options.tls.ca, servername: 'localhost' }) : connect({ port, host });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once(options.tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  private listen(socket: Socket | TLSSocket): void {
    socket.on('data', (chunk: Buffer) => {
      this.reads++;
      this.text += chunk.toString('utf8');
      this.parse();
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
      for (const w of this.closeWaiters.splice(0)) w();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Take complete replies (all lines up to one with a space after the code) from the text. */
  private parse(): void {
    for (;;) {
      let offset = 0;
      const lines: string[] = [];
      let last: string | null = null;
      for (;;) {
        const eol = this.text.indexOf('\r\n', offset);
        if (eol === -1) break;
        const line = this.text.slice(offset, eol);
        offset = eol + 2;
        lines.push(line.slice(4));
        if (line[3] !== '-') {
          last = line;
          break;
        }
      }
      if (last === null) return;
      this.text = this.text.slice(offset);
      const text = last.slice(4);
      const m = /^([245]\.\d{1,3}\.\d{1,3})(?: |$)/.exec(text);
      this.replies.push({ code: Number(last.slice(0, 3)), lines, text, enhanced: m ? m[1] : null });
    }
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Wait for `count` more replies (in addition to those already received and not yet taken). */
  async read(count = 1, timeoutMs = 10_000): Promise<Reply[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length < count) {
      if (this.closed) throw new Error(`connection closed after ${this.replies.length}/${count} replies`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${count} replies, got ${this.replies.length}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.replies.splice(0, count);
  }

  async reply(timeoutMs?: number): Promise<Reply> {
    return (await this.read(1, timeoutMs))[0];
  }

  /** Send a command line (CRLF added) and wait for its reply. */
  async command(line: string): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  /** Replies received so far and not taken. */
  get pending(): number {
    return this.replies.length;
  }

  waitClose(timeoutMs = 10_000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timeout waiting for close')), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** STARTTLS has been answered 220: continue over TLS. */
  async upgrade(ca: string): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure = tlsConnect({ socket: plain as Socket, ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.listen(secure);
  }

  get rawSocket(): Socket | TLSSocket {
    return this.socket;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Connect, read the greeting, EHLO. */
export async function ehloClient(port: number, host = '127.0.0.1'): Promise<RawClient> {
  const client = await RawClient.connect(port, host);
  const greeting = await client.reply();
  if (greeting.code !== 220) throw new Error(`greeting ${greeting.code} ${greeting.text}`);
  const ehlo = await client.command('EHLO client.test');
  if (ehlo.code !== 250) throw new Error(`EHLO ${ehlo.code} ${ehlo.text}`);
  return client;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll until `predicate` holds (for server-side state that follows a client event). */
export async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await sleep(5);
  }
}

/** Absolute path of an executable on PATH (or at one of `extra`), or null. */
export function findBinary(name: string, extra: string[] = []): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const candidate of [...extra, ...dirs.map((d) => join(d, name))]) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a program without blocking the event loop (the server under test lives in it). */
export function run(file: string, args: string[], timeoutMs = 15_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(file, args, { encoding: 'utf8', timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Run `fn` against a server started with `options`; the server is closed afterwards, whatever happens. */
export async function withServer(options: MockServerOptions, fn: (server: MockServer) => Promise<void>): Promise<void> {
  const server = await startMockServer(options);
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

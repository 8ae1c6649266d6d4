import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readCommands } from './fixtures/command-lines.js';
import { server } from './helpers.js';

// Finding 1 of issue 16: pending work (queued, delayed for a retry, in flight) keeps the process alive;
// a pool with nothing left to do does not. Each case runs test/fixtures/lifetime-child.ts in its own
// Node process, as a user's script, and asserts on how that process ends: its exit code, and what it
// printed. The child runs the TypeScript sources through tsx (a devDependency), so no build is needed
// and the code under test is the same src/ the other tests import.

const here = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(here, 'fixtures', 'lifetime-child.ts');
const ROOT = path.join(here, '..');

interface ChildEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: Array<Record<string, unknown>>;
  stderr: string;
}

function runChild(config: object): Promise<ChildEnd> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
      cwd: ROOT,
      env: { ...process.env, SLUICE_CHILD: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const lines = stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, signal, lines, stderr });
    });
  });
}

/**
 * A TCP relay in front of the server that records the client's command lines (not the message content)
 * and resolves `closed` with them when the client's side of the connection closes.
 */
async function tap(port: number): Promise<{ port: number; closed: Promise<string[]> }> {
  let closed!: (commands: string[]) => void;
  const done = new Promise<string[]>((resolve) => (closed = resolve));
  const relay = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    const commands: string[] = [];
    readCommands(client, (line) => commands.push(line));
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => {
      upstream.destroy();
      relay.close();
      closed(commands);
    });
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  return { port: (relay.address() as net.AddressInfo).port, closed: done };
}

// The first MAIL is refused with 421 and the server closes the connection: a transient failure, retried
// after a delay on a new connection.
const MAIL_421_ONCE = [{ command: 'MAIL' as const, times: 1, action: 'close' as const, reply: '421 4.3.2 Shutting down' }];
// An idle timeout far beyond the test's own: a process still alive because of an idle connection would
// time the test out instead of ending.
const LONG_IDLE = { timeouts: { idle: 600_000 } };

describe('the process lifetime', () => {
  it('a delayed retry keeps the process alive: the script prints "delivered" after the retry and exits 0', async () => {
    const s = await server({ faults: MAIL_421_ONCE });
    const end = await runChild({ port: s.port, end: 'none', options: { ...LONG_IDLE, retry: { minDelay: 300, maxDelay: 300, jitter: 0 } } });
    expect(end.stderr).toBe('');
    expect(end.code).toBe(0);
    expect(end.lines).toEqual([{ outcome: 'delivered', attempts: 2, events: ['retry', 'close:ECONNECTION'] }]);
    expect(s.inbox.messages).toHaveLength(1);
    expect(s.connections).toHaveLength(2);
  });

  it('a retry budget that runs out: the script prints "failed" and exits 0', async () => {
    const s = await server({ faults: [{ command: 'MAIL', action: 'close', reply: '421 4.3.2 Shutting down' }] });
    const end = await runChild({ port: s.port, end: 'none', options: { ...LONG_IDLE, retry: { retries: 2, minDelay: 100, maxDelay: 100, jitter: 0 } } });
    expect(end.code).toBe(0);
    expect(end.lines).toHaveLength(1);
    expect(end.lines[0]).toMatchObject({ outcome: 'failed', code: 'EENVELOPE', attempts: 3 });
    expect(s.connections).toHaveLength(3);
  });

  it('an idle connection does not hold the process: a script that never closes its pool exits 0 with the connection open (no QUIT)', async () => {
    const s = await server();
    const t = await tap(s.port);
    // DATA, not BDAT: the relay reads the client's commands line by line.
    const end = await runChild({ port: t.port, end: 'none', options: { ...LONG_IDLE, chunking: false } });
    expect(end.code).toBe(0);
    expect(end.lines).toEqual([{ outcome: 'delivered', attempts: 1, events: [] }]);
    // The process ended while its connection was idle: the operating system closed the socket, without QUIT.
    const commands = await t.closed;
    expect(commands.map((line) => line.split(' ')[0])).toEqual(['EHLO', 'MAIL', 'RCPT', 'DATA']);
    expect(s.inbox.messages).toHaveLength(1);
  });

  it('an awaited close() runs to its end: QUIT is sent and the script prints after it', async () => {
    const s = await server();
    const end = await runChild({ port: s.port, end: 'close', options: LONG_IDLE });
    expect(end.code).toBe(0);
    expect(end.lines[0]).toEqual({ outcome: 'delivered', attempts: 1, events: [] });
    expect(end.lines[1]).toMatchObject({ closed: true, stats: { connections: 0, queued: 0, delivered: 1 } });
    expect(s.connections[0]!.byCommand.QUIT).toBe(1);
  });

  it('destroy() during a retry delay ends the message (ECLOSED) and lets the process exit, although the delay is long', async () => {
    const s = await server({ faults: MAIL_421_ONCE });
    const end = await runChild({ port: s.port, end: 'destroy-on-retry', options: { ...LONG_IDLE, retry: { minDelay: 600_000, maxDelay: 600_000 } } });
    expect(end.code).toBe(0);
    expect(end.lines).toEqual([{ outcome: 'failed', code: 'ECLOSED', attempts: 1, events: ['retry', 'close:ECONNECTION'] }]);
    expect(s.inbox.messages).toHaveLength(0);
  });
});

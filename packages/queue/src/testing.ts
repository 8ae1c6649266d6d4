/**
 * `@sluice/queue/testing`: a real redis-server (Debian's package) on a free loopback port with its own temp dir, for tests and
 * the bench. Never 6379, never a server someone else runs. `persist` turns on the append-only file
 * (in the temp dir), for the restart test.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

let available: boolean | undefined;

/**
 * Whether a redis-server binary is there (`REDIS_SERVER`, or on PATH). Suites that need one run only
 * then, so `pnpm test` passes on a machine with Node alone; with `SLUICE_REQUIRE_REDIS=1` (CI sets it)
 * a missing binary is an error, never a silent skip.
 */
export function redisAvailable(): boolean {
  if (available === undefined) {
    const probe = spawnSync(process.env.REDIS_SERVER ?? 'redis-server', ['--version'], { stdio: 'ignore' });
    available = probe.status === 0;
    if (!available) {
      if (process.env.SLUICE_REQUIRE_REDIS === '1') throw new Error('redis-server is required here (SLUICE_REQUIRE_REDIS=1): apt-get install redis-server');
      console.warn('redis-server not found (apt-get install redis-server): the suites that need a real Redis are skipped');
    }
  }
  return available;
}

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** Stops the server (SIGTERM, or SIGKILL with `kill`) and starts it again on the same port and dir. */
  restart(options?: { kill?: boolean; downMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function launch(port: number, dir: string, persist: boolean): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no', '--protected-mode', 'yes'];
  if (persist) args.push('--appendonly', 'yes', '--appendfsync', 'always');
  else args.push('--appendonly', 'no');
  const child = spawn(process.env.REDIS_SERVER ?? 'redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('Ready to accept connections')) {
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.resume();
    child.once('error', (err) => reject(new Error(`redis-server could not start (apt-get install redis-server): ${err.message}`)));
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code} before it was ready:\n${out}`)));
  });
}

function exited(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

export async function startRedis(options: { persist?: boolean } = {}): Promise<RedisServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-redis-'));
  const persist = options.persist ?? false;
  let port = 0;
  let child: ChildProcess | null = null;
  for (let attempt = 0; !child; attempt++) {
    port = await freePort();
    try {
      child = await launch(port, dir, persist);
    } catch (err) {
      if (attempt >= 3) throw err; // the port was taken between the probe and the bind: try another
    }
  }
  let current = child;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    async restart({ kill = false, downMs = 0 } = {}) {
      await exited(current, kill ? 'SIGKILL' : 'SIGTERM');
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      current = await launch(port, dir, persist);
    },
    async stop() {
      await exited(current, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

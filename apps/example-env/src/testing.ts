import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MockServer, type MockServerOptions, startMockServer } from '@sluice/mock-server';

/**
 * A mock SMTP server offering STARTTLS with its self-signed certificate (and requiring TLS before
 * MAIL), started apart from the app, with that certificate written to a PEM file for SMTP_TLS_CA.
 */
export async function tlsMockServer(options: MockServerOptions = {}): Promise<{ mock: MockServer; caFile: string; close(): Promise<void> }> {
  const mock = await startMockServer({ requireTLS: true, ...options });
  const dir = await mkdtemp(join(tmpdir(), 'sluice-ca-'));
  const caFile = join(dir, 'mock-ca.pem');
  await writeFile(caFile, mock.ca);
  return {
    mock,
    caFile,
    close: async () => {
      await mock.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Builds the app and what it depends on (turbo: cached when nothing changed). */
export function buildApp(name: string): void {
  execFileSync('pnpm', ['-w', 'exec', 'turbo', 'run', 'build', `--filter=${name}...`, '--output-logs=errors-only'], { stdio: 'pipe', timeout: 240_000 });
}

export interface StartedThroughPnpm {
  /** The `pnpm --filter <app> start` process. */
  pnpm: ChildProcess;
  /** The app's own process id, from its "Listening on … (pid N)" line. */
  pid: number;
  url: string;
  /** Everything written to stdout and stderr so far. */
  output(): string;
}

/** `pnpm --filter <name> start` with PORT=0 and `env`; resolves once the app logged where it listens. */
export function startThroughPnpm(name: string, env: Record<string, string>): Promise<StartedThroughPnpm> {
  const pnpm = spawn('pnpm', ['--filter', name, 'start'], { env: { ...process.env, NO_COLOR: '1', PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s:\n${output}`)), 30_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Listening on (http:\/\/\S+) \(pid (\d+)\)/.exec(output);
      if (!match) return;
      clearTimeout(timer);
      resolve({ pnpm, pid: Number(match[2]), url: match[1]!, output: () => output });
    };
    pnpm.stdout!.on('data', read);
    pnpm.stderr!.on('data', read);
    pnpm.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`pnpm exited (${code ?? signal}) before ${name} listened:\n${output}`));
    });
  });
}

/** Whether a process with this id exists. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

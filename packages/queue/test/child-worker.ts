/** A sluice-worker CLI process (bundled from the sources by global-setup), for the crash tests. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI_DIR } from './global-setup.js';

export interface ChildWorker {
  child: ChildProcess;
  /** Resolves with the ready line. */
  ready: Promise<{ pid: number; metrics?: string }>;
  /** SIGKILL: the process gets no chance to release anything. */
  kill(): Promise<void>;
  stderr(): string;
}

export function spawnWorker(config: Record<string, unknown>): ChildWorker {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-worker-'));
  const file = path.join(dir, 'worker.json');
  writeFileSync(file, JSON.stringify(config));
  const child = spawn(process.execPath, [path.join(CLI_DIR, 'cli.js'), '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const ready = new Promise<{ pid: number; metrics?: string }>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.includes('"ready"'));
      if (line) resolve(JSON.parse(line));
    });
    child.once('exit', (code) => reject(new Error(`sluice-worker exited (${code}) before it was ready: ${err}`)));
  });
  return {
    child,
    ready,
    stderr: () => err,
    kill: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

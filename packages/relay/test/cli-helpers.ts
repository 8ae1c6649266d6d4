import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { CLI_DIR } from './global-setup.js';
import { onCleanup } from './helpers.js';

export const CLI = path.join(CLI_DIR, 'cli.js');

export interface RelayProcess {
  child: ChildProcess;
  port: number;
  httpPort: number | null;
  stdout: string[];
  stderr(): string;
  exited: Promise<number | null>;
  waitForLog(pred: (rec: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/** Runs the CLI with args; resolves once it logs "sluice-relay started" (or rejects with its stderr). */
/** The CLI's arguments for a relay on a free loopback port, no HTTP port, to a local upstream. */
export function relayArgs(upstreamPort: number, spool: string, ...extra: string[]): string[] {
  return ['--upstream', `smtp://127.0.0.1:${upstreamPort}`, '--listen', '127.0.0.1:0', '--http', 'off', '--spool', spool, ...extra];
}

export function spawnRelay(args: string[], env: Record<string, string> = {}): Promise<RelayProcess> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  onCleanup(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const stdout: string[] = [];
  let stderr = '';
  let buf = '';
  const listeners = new Set<() => void>();
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    buf += chunk;
    let nl = buf.indexOf('\n');
    while (nl !== -1) {
      stdout.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      nl = buf.indexOf('\n');
    }
    for (const l of listeners) l();
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const records = () =>
    stdout.flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  const waitForLog = (pred: (rec: Record<string, unknown>) => boolean, timeoutMs = 10_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const found = records().find(pred);
        if (found) {
          listeners.delete(check);
          clearTimeout(timer);
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`log line not seen; stderr: ${stderr}\nstdout: ${stdout.slice(-20).join('\n')}`));
      }, timeoutMs);
      listeners.add(check);
      exited.then(() =>
        setTimeout(() => {
          if (listeners.has(check)) {
            listeners.delete(check);
            clearTimeout(timer);
            reject(new Error(`relay exited: ${stderr}`));
          }
        }, 50),
      );
      check();
    });
  return waitForLog((r) => r.msg === 'sluice-relay started', 15_000).then((rec) => {
    const [, port] = /:(\d+)$/.exec(String(rec.listen))!;
    const http = rec.http ? Number(/:(\d+)$/.exec(String(rec.http))![1]) : null;
    return { child, port: Number(port), httpPort: http, stdout, stderr: () => stderr, exited, waitForLog };
  });
}

/** Runs the CLI to completion. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  onCleanup(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

/**
 * What the bench runs that is not Node: Postfix (started privately by scripts/postfix/start.sh, behind
 * the delay proxy for a simulated RTT) and Postfix's smtp-source, the C baseline for CPU per message.
 */
import { type ChildProcess, execFile, fork, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClientResult } from './client-process.js';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const scripts = here('../../../scripts/postfix/');
export const SMTP_SOURCE = '/usr/sbin/smtp-source';

export interface Upstream {
  host: string;
  port: number;
  close(): Promise<void>;
}

function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(file, args, { maxBuffer: 1 << 24 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${path.basename(file)}: ${err.message}\n${stderr}`)) : resolve(stdout),
    ),
  );
}

/** A private Postfix on a free port (it discards what it accepts), or null with the reason when it cannot start here. */
export async function startPostfix(): Promise<Upstream | { unavailable: string }> {
  if (!existsSync('/usr/sbin/postfix')) return { unavailable: 'Postfix is not installed (/usr/sbin/postfix)' };
  const dir = path.join(os.tmpdir(), `sluice-bench-postfix-${process.pid}`);
  let out: string;
  try {
    out = await run(path.join(scripts, 'start.sh'), [dir]);
  } catch (err) {
    return { unavailable: (err as Error).message.split('\n')[0]! };
  }
  const port = Number(/POSTFIX_PORT=(\d+)/.exec(out)?.[1]);
  return { host: '127.0.0.1', port, close: () => run(path.join(scripts, 'stop.sh'), [dir]).then(() => rmSync(dir, { recursive: true, force: true })) };
}

/** The delay proxy (delay-proxy.ts) in front of `target`, in its own process. */
export async function startDelayProxy(target: { host: string; port: number }, rtt: number): Promise<Upstream> {
  const child: ChildProcess = fork(here('./delay-proxy.js'), [JSON.stringify({ host: target.host, port: target.port, rtt })], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [ready] = (await once(child, 'message')) as [{ port: number }];
  return {
    host: '127.0.0.1',
    port: ready.port,
    close: async () => {
      child.kill();
      await once(child, 'exit');
    },
  };
}

/** bash's `times` prints the children's user and system CPU as "XmY.YYYs XmY.YYYs" on its second line. */
function seconds(field: string): number {
  const m = /^(\d+)m([\d.]+)s$/.exec(field);
  return m ? Number(m[1]) * 60 + Number(m[2]) : Number.NaN;
}

/**
 * smtp-source with `sessions` connections, each sending its messages over the one connection (-d), in
 * lock-step (it has no pipelining). CPU is smtp-source's alone (its process, through bash's `times`).
 */
export async function runSmtpSource(o: {
  host: string;
  port: number;
  messages: number;
  size: number;
  recipients: number;
  sessions: number;
}): Promise<ClientResult> {
  const args = [
    '-d',
    '-s',
    String(o.sessions),
    '-m',
    String(o.messages),
    '-l',
    String(o.size),
    '-r',
    String(o.recipients),
    '-f',
    'bench@example.com',
    '-t',
    'user@example.com',
    '-M',
    'bench.sluice.test',
    `${o.host}:${o.port}`,
  ];
  const script = `"${SMTP_SOURCE}" ${args.map((a) => `'${a}'`).join(' ')} || exit $?; times`;
  const t0 = performance.now();
  const child = spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const [code] = (await once(child, 'exit')) as [number];
  const elapsed = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`smtp-source exited with code ${code}`);
  const [user, system] = (out.trim().split('\n').at(-1) ?? '').split(/\s+/).map(seconds);
  const cpu = (user ?? Number.NaN) + (system ?? Number.NaN);
  return {
    sender: 'smtp-source',
    delivered: o.messages,
    failed: 0,
    seconds: elapsed,
    perSecond: o.messages / elapsed,
    p50: Number.NaN,
    p99: Number.NaN,
    cpuPer1000: (cpu / o.messages) * 1000,
    peakRssMb: Number.NaN,
    eventLoopP99: Number.NaN,
  };
}

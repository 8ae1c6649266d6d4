/**
 * A legacy sender (one connection per message, nodemailer without pool) sending
 *   a) straight to the upstream at 50 ms RTT, and
 *   b) to sluice-relay on localhost (no latency), which forwards to the same upstream at 50 ms RTT.
 * The upstream mock server and the relay each run in their own process.
 *
 * BENCH_RTT (50), BENCH_MESSAGES (400), BENCH_DIRECT_MESSAGES (60), BENCH_SIZE (2048),
 * BENCH_CONCURRENCY ("1,10": simultaneous legacy senders).
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import nodemailer from 'nodemailer';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const RTT = Number(process.env.BENCH_RTT ?? 50);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 400);
const DIRECT_MESSAGES = Number(process.env.BENCH_DIRECT_MESSAGES ?? 60);
const SIZE = Number(process.env.BENCH_SIZE ?? 2048);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,10').split(',').map(Number);

interface Upstream {
  port: number;
  count(): Promise<number>;
  clear(): Promise<void>;
  close(): Promise<void>;
}

async function startUpstream(): Promise<Upstream> {
  const child = fork(here('./server-process.js'), [JSON.stringify({ rtt: RTT, extensions: { starttls: false } })], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [ready] = (await once(child, 'message')) as [{ port: number }];
  const ask = async (type: string, answer: string) => {
    child.send({ type });
    for (;;) {
      const [msg] = (await once(child, 'message')) as [{ type: string; count?: number }];
      if (msg.type === answer) return msg;
    }
  };
  return {
    port: ready.port,
    count: async () => (await ask('count', 'count')).count!,
    clear: async () => void (await ask('clear', 'cleared')),
    close: async () => {
      child.send({ type: 'close' });
      await once(child, 'exit');
    },
  };
}

async function startRelayProcess(upstreamPort: number, spool: string): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [here('./cli.js'), '--upstream', `smtp://127.0.0.1:${upstreamPort}`, '--listen', '127.0.0.1:0', '--http', 'off', '--spool', spool],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let buf = '';
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (c: Buffer) => {
      buf += c.toString();
      const m = /"msg":"sluice-relay started","listen":"[^"]*:(\d+)"/.exec(buf);
      if (m) {
        child.stdout!.off('data', onData);
        child.stdout!.on('data', () => {}); // the JSON logs are discarded (but still written, as in production)
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.on('exit', () => reject(new Error('relay exited')));
  });
  return { port, child };
}

function body(i: number): string {
  const text = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(Math.ceil(SIZE / 57)).slice(0, SIZE);
  return `From: app@example.com\r\nTo: r${i}@example.com\r\nSubject: bench ${i}\r\nMessage-ID: <bench-${i}@example.com>\r\n\r\n${text}\r\n`;
}

/** `concurrency` legacy senders, each opening a connection per message. Resolves with the elapsed ms. */
async function legacySend(port: number, messages: number, concurrency: number): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = next++;
        if (i >= messages) return;
        const t = nodemailer.createTransport({ host: '127.0.0.1', port, ignoreTLS: true });
        await t.sendMail({ envelope: { from: 'app@example.com', to: [`r${i}@example.com`] }, raw: body(i) });
        t.close();
      }
    }),
  );
  return performance.now() - start;
}

async function waitForCount(up: Upstream, n: number, timeoutMs = 300_000): Promise<void> {
  const start = Date.now();
  while ((await up.count()) < n) {
    if (Date.now() - start > timeoutMs) throw new Error(`upstream has ${await up.count()} of ${n}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const rate = (n: number, ms: number) => (n / (ms / 1000)).toFixed(1);

const up = await startUpstream();
const spool = await mkdtemp(path.join(os.tmpdir(), 'sluice-relay-bench-'));
const relay = await startRelayProcess(up.port, spool);
const rows: string[] = [];
console.log(
  `relay bench: upstream mock at ${RTT} ms RTT (own process), ${SIZE}-byte messages, legacy sender = nodemailer without pool (one connection per message)`,
);
for (const c of CONCURRENCY) {
  await up.clear();
  const directN = Math.min(DIRECT_MESSAGES * c, MESSAGES);
  const direct = await legacySend(up.port, directN, c);
  await waitForCount(up, directN);
  await up.clear();
  const start = performance.now();
  const accept = await legacySend(relay.port, MESSAGES, c);
  await waitForCount(up, MESSAGES);
  const e2e = performance.now() - start;
  const row = `| ${c} | ${rate(directN, direct)} msg/s (${directN} msgs) | ${rate(MESSAGES, accept)} msg/s | ${rate(MESSAGES, e2e)} msg/s (${MESSAGES} msgs) | ×${(MESSAGES / e2e / (directN / direct)).toFixed(1)} |`;
  rows.push(row);
  console.log(row);
}
console.log('\n| legacy senders | direct to upstream | accepted by the relay (sender done) | end to end via relay (in upstream inbox) | speed-up |');
console.log('| --- | --- | --- | --- | --- |');
for (const r of rows) console.log(r);
relay.child.kill('SIGTERM');
await once(relay.child, 'exit');
await up.close();
await rm(spool, { recursive: true, force: true });

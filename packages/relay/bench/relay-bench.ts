/**
 * A legacy sender (one connection per message, nodemailer without pool) sending
 *   a) straight to the upstream at 50 ms RTT,
 *   b) to sluice-relay on localhost (no latency), which forwards to the same upstream at 50 ms RTT, and
 *   c) to Debian's Postfix on localhost configured as the smarthost for the same upstream
 *      (scripts/postfix/smarthost.sh: a private instance in its own directory, 20 connections,
 *      50 messages per connection, as sluice-relay). Needs root (or sudo -n) and postfix installed;
 *      otherwise the bench says why and leaves that column out.
 * The upstream mock server, the relay and Postfix each run in their own process(es). End to end is
 * measured until the upstream has received all N messages.
 *
 * Hand-off and end to end are measured in REPEAT pairs (sluice-relay, then Postfix; the next pair the other
 * way round, so that a drift in the machine's load favours neither), after a warm-up of both; the table
 * shows the medians, and the hand-off ratio of each pair.
 *
 * BENCH_RTT (50), BENCH_MESSAGES (1000 per measurement), BENCH_DIRECT_MESSAGES (60), BENCH_SIZE (2048),
 * BENCH_REPEAT (3 pairs), BENCH_WARMUP (3000 messages to each relay before measuring each sender count),
 * BENCH_CONCURRENCY ("1,10": simultaneous legacy senders), BENCH_POSTFIX ("1"; "0" leaves Postfix out),
 * BENCH_POSTFIX_DIR (packages/relay/.cache/postfix-smarthost), BENCH_POSTFIX_INITIAL_CONCURRENCY
 * (Postfix's initial_destination_concurrency, Postfix's default 5), BENCH_TIMEOUT (300 s per measurement),
 * BENCH_RELAY_CLI (the relay CLI to run: .cache/bench/cli.js, built from these sources),
 * BENCH_RELAY_NODE_ARGS (node options for the relay process, e.g. "--cpu-prof --cpu-prof-dir=DIR"),
 * BENCH_RELAY_ARGS (more relay CLI options, e.g. "--max-connections 10"), BENCH_RELAY_LOG (the file for the relay's
 * stdout, kept: its logs, and the traces of BENCH_RELAY_NODE_ARGS; by default a temporary file, removed).
 */
import { type ChildProcess, execFile, execFileSync, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import nodemailer from 'nodemailer';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const RTT = Number(process.env.BENCH_RTT ?? 50);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 1000);
const DIRECT_MESSAGES = Number(process.env.BENCH_DIRECT_MESSAGES ?? 60);
const SIZE = Number(process.env.BENCH_SIZE ?? 2048);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,10').split(',').map(Number);
const TIMEOUT = Number(process.env.BENCH_TIMEOUT ?? 300) * 1000;
const POSTFIX = process.env.BENCH_POSTFIX !== '0';
// The bench runs from packages/relay/.cache/bench/.
const POSTFIX_DIR = path.resolve(process.env.BENCH_POSTFIX_DIR ?? here('../postfix-smarthost'));
const SCRIPTS = here('../../../../scripts/postfix/');
// Another build of the relay's CLI to measure (BENCH_RELAY_CLI), e.g. one built from main for a before/after.
const RELAY_CLI = path.resolve(process.env.BENCH_RELAY_CLI ?? here('./cli.js'));
// Node options for the relay process only, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile it.
const RELAY_NODE_ARGS = (process.env.BENCH_RELAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
// More relay CLI options, e.g. "--max-connections 10".
const RELAY_ARGS = (process.env.BENCH_RELAY_ARGS ?? '').split(' ').filter(Boolean);
// The file for the relay's stdout (its JSON logs, and what BENCH_RELAY_NODE_ARGS traces); by default one next to the spool, removed at the end.
const RELAY_LOG = process.env.BENCH_RELAY_LOG;
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3000);

// ------------------------------------------------------------------ cleanup ("trap")

const cleanups: (() => void)[] = [];
/** Synchronous, so that it also runs from 'exit' and signal handlers. Each cleanup runs once. */
function runCleanups(): void {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      fn();
    } catch (err) {
      console.error('cleanup failed:', err);
    }
  }
}
process.on('exit', runCleanups);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    console.error(`\n${sig}: stopping`);
    runCleanups();
    process.exit(130);
  });
}

// ------------------------------------------------------------------ the upstream

interface Upstream {
  port: number;
  count(): Promise<{ count: number; connections: number }>;
  clear(): Promise<void>;
  close(): Promise<void>;
}

async function startUpstream(): Promise<Upstream> {
  const child = fork(here('./server-process.js'), [JSON.stringify({ rtt: RTT, extensions: { starttls: false } })], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  cleanups.push(() => child.kill());
  const [ready] = (await once(child, 'message')) as [{ port: number }];
  const ask = async (type: string, answer: string) => {
    child.send({ type });
    for (;;) {
      const [msg] = (await once(child, 'message')) as [{ type: string; count?: number; connections?: number }];
      if (msg.type === answer) return msg;
    }
  };
  return {
    port: ready.port,
    count: async () => {
      const m = await ask('count', 'count');
      return { count: m.count!, connections: m.connections! };
    },
    clear: async () => void (await ask('clear', 'cleared')),
    close: async () => {
      child.send({ type: 'close' });
      await once(child, 'exit');
    },
  };
}

// ------------------------------------------------------------------ sluice-relay

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); NaN elsewhere. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime (fields 14 and 15) in ticks of 1/100 s
  } catch {
    return Number.NaN;
  }
}

async function startRelayProcess(upstreamPort: number, spool: string): Promise<{ port: number; child: ChildProcess }> {
  // The relay logs into a file, as Postfix does into its maillog: a pipe read by this process would wake
  // the senders' event loop for every line the relay writes, a cost Postfix's logging does not put on them.
  const logFile = RELAY_LOG ?? path.join(spool, '..', `${path.basename(spool)}.log`);
  if (!RELAY_LOG) cleanups.push(() => rmSync(logFile, { force: true }));
  const out = openSync(logFile, 'w');
  const child = spawn(
    process.execPath,
    [
      ...RELAY_NODE_ARGS,
      RELAY_CLI,
      '--upstream',
      `smtp://127.0.0.1:${upstreamPort}`,
      '--listen',
      '127.0.0.1:0',
      '--http',
      'off',
      '--spool',
      spool,
      ...RELAY_ARGS,
    ],
    { stdio: ['ignore', out, 'inherit'] },
  );
  closeSync(out);
  cleanups.push(() => child.kill('SIGKILL'));
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  const started = Date.now();
  for (;;) {
    const m = /"msg":"sluice-relay started","listen":"[^"]*:(\d+)"/.exec(readFileSync(logFile, 'utf8'));
    if (m) return { port: Number(m[1]), child };
    if (exited) throw new Error(`the relay exited (see ${logFile})`);
    if (Date.now() - started > 30_000) throw new Error(`the relay did not start within 30 s (see ${logFile})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ------------------------------------------------------------------ Postfix as the smarthost

interface Smarthost {
  port: number;
  version: string;
  stop(): void;
}

/** Starts the private Postfix instance in POSTFIX_DIR relaying to the upstream; a string says why not. */
async function startPostfix(upstreamPort: number): Promise<Smarthost | string> {
  const start = path.join(SCRIPTS, 'smarthost.sh');
  const stopScript = path.join(SCRIPTS, 'stop.sh');
  if (!existsSync(start) || !existsSync(stopScript)) return `${start} or stop.sh not found`;
  const stop = (quiet = false) => {
    try {
      execFileSync('bash', [stopScript, POSTFIX_DIR], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
    } catch (err) {
      if (!quiet) console.error(`could not stop Postfix in ${POSTFIX_DIR}: ${(err as { stderr?: Buffer }).stderr ?? err}`);
    }
  };
  // Registered before the start: an interrupted start leaves nothing running either.
  cleanups.push(stop);
  const env = { ...process.env };
  if (process.env.BENCH_POSTFIX_INITIAL_CONCURRENCY) env.SMARTHOST_INITIAL_CONCURRENCY = process.env.BENCH_POSTFIX_INITIAL_CONCURRENCY;
  const result = await new Promise<{ error: Error | null; stdout: string; stderr: string }>((resolve) =>
    execFile('bash', [start, POSTFIX_DIR, String(upstreamPort)], { env, timeout: 60_000 }, (error, stdout, stderr) => resolve({ error, stdout, stderr })),
  );
  const port = /^POSTFIX_PORT=(\d+)$/m.exec(result.stdout)?.[1];
  if (result.error || !port) {
    // The script stops what it started when it fails; this is for a start cut short by the timeout.
    cleanups.splice(cleanups.indexOf(stop), 1);
    stop(true);
    const why = result.stderr.trim().split('\n').filter(Boolean).slice(-3).join(' / ') || String(result.error?.message ?? 'no port');
    return why;
  }
  const version = / Postfix (\S+) on /.exec(result.stderr)?.[1] ?? '?';
  return {
    port: Number(port),
    version,
    stop: () => {
      const i = cleanups.indexOf(stop);
      if (i >= 0) cleanups.splice(i, 1);
      stop();
    },
  };
}

// ------------------------------------------------------------------ senders and measurement

function body(i: number): string {
  // Lines of 78 characters (RFC 5322 §2.1.1): a single long line would be refused (over 998 octets).
  const text = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '
    .repeat(Math.ceil(SIZE / 57))
    .slice(0, SIZE)
    .replace(/(.{78})/g, '$1\r\n');
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
        // One domain for every recipient (Postfix queues per destination; it is the relayhost anyway).
        const t = nodemailer.createTransport({ host: '127.0.0.1', port, ignoreTLS: true });
        await t.sendMail({ envelope: { from: 'app@example.com', to: [`r${i}@example.com`] }, raw: body(i) });
        t.close();
      }
    }),
  );
  return performance.now() - start;
}

async function waitForCount(up: Upstream, n: number, timeoutMs = TIMEOUT): Promise<void> {
  const start = Date.now();
  while ((await up.count()).count < n) {
    if (Date.now() - start > timeoutMs) throw new Error(`upstream has ${(await up.count()).count} of ${n} after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Result {
  accepted: number; // msg/s until the sender was done
  e2e: number; // msg/s until the upstream had them all
  connections: number; // upstream connections opened meanwhile
}

/** Legacy senders to `port` (a relay), timed until the sender is done and until the upstream has all N. */
async function viaRelay(up: Upstream, port: number, n: number, c: number): Promise<Result> {
  await up.clear();
  const start = performance.now();
  const accept = await legacySend(port, n, c);
  await waitForCount(up, n);
  const e2e = performance.now() - start;
  const { connections } = await up.count();
  return { accepted: n / (accept / 1000), e2e: n / (e2e / 1000), connections };
}

const f = (r: number) => `${r.toFixed(1)} msg/s`;
const x = (a: number, b: number) => `×${(a / b).toFixed(a / b >= 10 ? 0 : 1)}`;

// ------------------------------------------------------------------ run

const up = await startUpstream();
const spool = await mkdtemp(path.join(os.tmpdir(), 'sluice-relay-bench-'));
cleanups.push(() => void rm(spool, { recursive: true, force: true }));
const relay = await startRelayProcess(up.port, spool);

let postfix: Smarthost | undefined;
let postfixSkipped: string | undefined;
if (!POSTFIX) postfixSkipped = 'BENCH_POSTFIX=0';
else {
  const started = await startPostfix(up.port);
  if (typeof started === 'string') postfixSkipped = started;
  else postfix = started;
}

console.log(
  `relay bench: upstream mock at ${RTT} ms RTT (own process), ${SIZE}-byte messages, legacy sender = nodemailer without pool (one connection per message), the same client for both relays`,
);
console.log(
  postfix
    ? `Postfix ${postfix.version} as the smarthost on 127.0.0.1:${postfix.port} (${POSTFIX_DIR}: config in etc/, log in maillog)`
    : `Postfix smarthost skipped: ${postfixSkipped}`,
);
console.log(
  `${REPEAT} pair(s) per sender count, ${MESSAGES} messages per measurement, the order alternating (sluice-relay first, then Postfix first); ${WARMUP} warm-up messages to each before each sender count (not counted); medians in the table`,
);

/** Postfix measured once; undefined (and Postfix left out from here on) when it does not deliver in time. */
async function measurePostfix(c: number, n: number, label: string): Promise<Result | undefined> {
  if (!postfix) return undefined;
  try {
    return await viaRelay(up, postfix.port, n, c);
  } catch (err) {
    console.log(`${label}: Postfix ${(err as Error).message} (see ${POSTFIX_DIR}/maillog); Postfix left out from here on`);
    postfix.stop();
    postfix = undefined;
    postfixSkipped = 'did not finish';
    return undefined;
  }
}

async function measureSluice(c: number, n: number): Promise<Result & { cpu: number }> {
  const cpu0 = cpuSeconds(relay.child.pid);
  const r = await viaRelay(up, relay.port, n, c);
  return { ...r, cpu: ((cpuSeconds(relay.child.pid) - cpu0) / n) * 1000 };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const rows: string[] = [];
for (const c of CONCURRENCY) {
  await up.clear();
  const directN = Math.min(DIRECT_MESSAGES * c, MESSAGES);
  const directMs = await legacySend(up.port, directN, c);
  await waitForCount(up, directN);
  const direct = directN / (directMs / 1000);
  console.log(`${c} sender(s), direct: ${f(direct)} (${directN} msgs)`);

  if (WARMUP > 0) {
    await measureSluice(c, WARMUP);
    await measurePostfix(c, WARMUP, `${c} sender(s), warm-up`);
  }
  const sl: (Result & { cpu: number })[] = [];
  const pf: Result[] = [];
  for (let pair = 1; pair <= REPEAT; pair++) {
    const label = `${c} sender(s), pair ${pair}`;
    let s: Result & { cpu: number };
    let p: Result | undefined;
    if (pair % 2 === 1) {
      s = await measureSluice(c, MESSAGES);
      p = await measurePostfix(c, MESSAGES, label);
    } else {
      p = await measurePostfix(c, MESSAGES, label);
      s = await measureSluice(c, MESSAGES);
    }
    sl.push(s);
    if (p) pf.push(p);
    console.log(
      `${label}: sluice-relay accepted ${f(s.accepted)}, end to end ${f(s.e2e)} (${s.connections} new upstream connections, ${s.cpu.toFixed(2)} ms of relay CPU per message)` +
        (p
          ? `; Postfix accepted ${f(p.accepted)}, end to end ${f(p.e2e)} (${p.connections} new upstream connections); accepted ${x(s.accepted, p.accepted)}, end to end ${x(s.e2e, p.e2e)}`
          : ''),
    );
  }
  const m = {
    accepted: median(sl.map((r) => r.accepted)),
    e2e: median(sl.map((r) => r.e2e)),
    cpu: median(sl.map((r) => r.cpu)),
  };
  // Every pair measured Postfix, or the Postfix columns stay empty.
  const p = pf.length === sl.length ? { accepted: median(pf.map((r) => r.accepted)), e2e: median(pf.map((r) => r.e2e)) } : undefined;
  const pfNote = postfixSkipped ? (postfixSkipped === 'did not finish' ? 'did not finish' : 'skipped') : '';
  const handOff = pf.length === sl.length ? sl.map((r, i) => x(r.accepted, pf[i].accepted)).join(' ') : '–';
  rows.push(
    [
      c,
      `${f(direct)}`,
      f(m.accepted),
      f(m.e2e),
      p ? f(p.accepted) : pfNote,
      p ? f(p.e2e) : pfNote,
      x(m.e2e, direct),
      p ? x(p.e2e, direct) : '–',
      p ? x(m.e2e, p.e2e) : '–',
      p ? `${x(m.accepted, p.accepted)} (pairs: ${handOff})` : '–',
      `${m.cpu.toFixed(2)} ms`,
    ].join(' | '),
  );
}

console.log(
  `\nmedians of ${REPEAT} pair(s); end to end = until the upstream (${RTT} ms RTT) has all ${MESSAGES} messages; direct: ${DIRECT_MESSAGES} messages per sender (at most ${MESSAGES})`,
);
console.log(
  '| legacy senders | direct to upstream | sluice-relay accepted | sluice-relay end to end | Postfix accepted | Postfix end to end | sluice-relay ÷ direct | Postfix ÷ direct | sluice-relay ÷ Postfix | accepted: sluice-relay ÷ Postfix | relay CPU per message |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) console.log(`| ${r} |`);
if (postfixSkipped) console.log(`(Postfix: ${postfixSkipped})`);

postfix?.stop();
relay.child.kill('SIGTERM');
await once(relay.child, 'exit');
await up.close();
await rm(spool, { recursive: true, force: true });

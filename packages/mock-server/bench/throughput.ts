/**
 * Throughput of the mock server with recording off: is it fast enough never to be the bottleneck of
 * a client benchmark?
 *
 * The server runs in a child process (its own event loop and core); this process drives it with raw
 * sockets that pipeline across messages: after the 354, each write is `<body>.\r\n` plus the next
 * `MAIL`/`RCPT`/`DATA`, answered by one write of four replies. The BDAT run writes
 * `MAIL`/`RCPT`/`BDAT n LAST` and the body in one go per message. One message per round trip per
 * connection, in both modes.
 *
 *   pnpm --filter @sluice/mock-server bench
 *   BENCH_CONNECTIONS=16 BENCH_SECONDS=5 BENCH_SIZE=2048 pnpm --filter @sluice/mock-server bench
 */
import { type ChildProcess, fork } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { startMockServer } from '../src/index.js';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const SIZE = Number(process.env.BENCH_SIZE ?? 2048);
const WARMUP_MS = 500;

type Mode = 'DATA' | 'BDAT';

interface ChildMessage {
  port?: number;
  accepted?: number;
}

// ------------------------------------------------------------------ child: the server

async function child(): Promise<void> {
  const server = await startMockServer({ record: false, inboxLimit: 0 });
  let accepted = 0;
  server.configure({ onMessage: () => accepted++ });
  process.send?.({ port: server.port } satisfies ChildMessage);
  process.on('message', async (message: string) => {
    if (message === 'count') process.send?.({ accepted } satisfies ChildMessage);
    if (message === 'stop') {
      await server.close();
      process.exit(0);
    }
  });
}

// ------------------------------------------------------------------ parent: the driver

/** A 2 KiB-ish message made of 78-character lines, none starting with a dot. */
function makeBody(size: number): Buffer {
  const line = `${'x'.repeat(76)}\r\n`;
  let text = 'From: bench@example.com\r\nTo: sink@example.com\r\nSubject: throughput\r\n\r\n';
  while (text.length + line.length <= size) text += line;
  text += 'y'.repeat(Math.max(0, size - text.length - 2));
  return Buffer.from(`${text}\r\n`.slice(0, size), 'latin1');
}

const ENVELOPE = 'MAIL FROM:<bench@example.com>\r\nRCPT TO:<sink@example.com>\r\n';

/** Drive one connection until `deadline`; returns the completion times of its messages. */
function drive(port: number, mode: Mode, body: Buffer, deadline: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const done: number[] = [];
    const socket: Socket = connect({ port, host: '127.0.0.1' });
    socket.setNoDelay(true);
    const dataWrite = Buffer.concat([body, Buffer.from(`.\r\n${ENVELOPE}DATA\r\n`)]);
    const bdatWrite = Buffer.concat([Buffer.from(`${ENVELOPE}BDAT ${body.length} LAST\r\n`), body]);
    let stage: 'greeting' | 'ehlo' | 'first354' | 'run' = 'greeting';
    let text = '';

    const finish = () => {
      socket.destroy();
      resolve(done);
    };

    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      // Work on complete reply batches only: the last line must be final ("ddd ").
      if (!text.endsWith('\r\n')) return;
      const previous = text.lastIndexOf('\r\n', text.length - 3);
      const lastLine = previous === -1 ? text : text.slice(previous + 2);
      if (lastLine[3] !== ' ') return;
      const batch = text;
      text = '';
      if (batch.includes('\r\n4') || batch.startsWith('4') || batch.includes('\r\n5') || batch.startsWith('5')) {
        reject(new Error(`server error: ${batch.trim()}`));
        socket.destroy();
        return;
      }
      const now = performance.now();
      switch (stage) {
        case 'greeting':
          stage = 'ehlo';
          socket.write('EHLO bench.test\r\n');
          return;
        case 'ehlo':
          if (mode === 'DATA') {
            stage = 'first354';
            socket.write(`${ENVELOPE}DATA\r\n`);
          } else {
            stage = 'run';
            socket.write(bdatWrite);
          }
          return;
        case 'first354':
          stage = 'run';
          socket.write(dataWrite);
          return;
        case 'run':
          done.push(now);
          if (now >= deadline) return finish();
          socket.write(mode === 'DATA' ? dataWrite : bdatWrite);
          return;
      }
    });
  });
}

function ask(server: ChildProcess, message: string): Promise<ChildMessage> {
  return new Promise((resolve) => {
    server.once('message', (reply: ChildMessage) => resolve(reply));
    server.send(message);
  });
}

async function measure(port: number, mode: Mode, body: Buffer): Promise<number> {
  const start = performance.now();
  const deadline = start + WARMUP_MS + SECONDS * 1000;
  const results = await Promise.all(Array.from({ length: CONNECTIONS }, () => drive(port, mode, body, deadline)));
  const from = start + WARMUP_MS;
  const counted = results.flat().filter((t) => t >= from && t <= deadline).length;
  return counted / SECONDS;
}

async function parent(): Promise<void> {
  const server = fork(fileURLToPath(import.meta.url), ['--child'], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : [],
  });
  const { port } = await new Promise<ChildMessage>((resolve) => server.once('message', resolve));
  const body = makeBody(SIZE);
  console.log(`mock-server throughput: ${CONNECTIONS} connections, ${body.length}-byte messages, ${SECONDS} s per run, record off`);
  console.log(`node ${process.version}, server in a child process`);
  try {
    for (const mode of ['DATA', 'BDAT'] as const) {
      const before = (await ask(server, 'count')).accepted ?? 0;
      const rate = await measure(port as number, mode, body);
      const after = (await ask(server, 'count')).accepted ?? 0;
      console.log(
        `${mode.padEnd(4)}  ${Math.round(rate).toLocaleString('en-US').padStart(8)} messages/s  (${after - before} accepted by the server in the run)`,
      );
    }
  } finally {
    server.send('stop');
  }
}

if (process.argv.includes('--child')) await child();
else await parent();

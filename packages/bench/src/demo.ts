/**
 * `pnpm demo`: sends one batch through nodemailer's SMTP pool and through sluice, to sluice's mock SMTP
 * server with a simulated 50 ms round trip, and prints outcomes, throughput and the round-trip floor.
 * Both senders get the same connection budget (20 connections, 50 messages each: SocketLabs' guidance).
 */
import { createPool } from '@sluice/core';
import { startMockServer } from '@sluice/mock-server';
import nodemailer from 'nodemailer';

const RTT = Number(process.env.DEMO_RTT ?? 50);
const MESSAGES = Number(process.env.DEMO_MESSAGES ?? 1000);
const CONNECTIONS = 20;
const PER_CONNECTION = 50;

function body(i: number): string {
  const text = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(30);
  return `From: demo@example.com\r\nTo: user${i}@example.com\r\nSubject: Demo ${i}\r\nMessage-ID: <demo-${i}@sluice.test>\r\n\r\n${text}\r\n`;
}

function bar(done: number, total: number): string {
  const width = 30;
  const filled = Math.round((done / total) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(done).padStart(String(total).length)}/${total}`;
}

interface Run {
  name: string;
  seconds: number;
  delivered: number;
  other: number;
}

async function measure(name: string, send: (i: number) => Promise<unknown>, finish: () => Promise<void>): Promise<Run> {
  let done = 0;
  let delivered = 0;
  const tty = process.stdout.isTTY;
  const draw = () => {
    const line = `  ${name.padEnd(22)} ${bar(done, MESSAGES)}`;
    if (tty) process.stdout.write(`\r${line}`);
  };
  const started = performance.now();
  const timer = setInterval(draw, 100);
  await Promise.all(
    Array.from({ length: MESSAGES }, (_, i) =>
      send(i).then(
        () => {
          delivered++;
          done++;
        },
        () => {
          done++;
        },
      ),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  clearInterval(timer);
  draw();
  if (tty) process.stdout.write('\n');
  else console.log(`  ${name.padEnd(22)} ${bar(done, MESSAGES)}`);
  await finish();
  return { name, seconds, delivered, other: MESSAGES - delivered };
}

async function main(): Promise<void> {
  const server = await startMockServer({ rtt: RTT, record: false, extensions: { starttls: false } });
  console.log(`sluice demo: ${MESSAGES} messages of ~2 KiB to a mock SMTP server at ${RTT} ms RTT, ${CONNECTIONS} connections × ${PER_CONNECTION} messages\n`);

  const runs: Run[] = [];
  const nm = nodemailer.createTransport({ host: server.host, port: server.port, pool: true, maxConnections: CONNECTIONS, maxMessages: PER_CONNECTION, ignoreTLS: true });
  runs.push(
    await measure(
      'nodemailer 10 (pool)',
      (i) => nm.sendMail({ envelope: { from: 'demo@example.com', to: [`user${i}@example.com`] }, raw: body(i) }),
      async () => nm.close(),
    ),
  );

  const pool = createPool({ host: server.host, port: server.port, name: 'demo.sluice.test', maxConnections: CONNECTIONS, maxMessagesPerConnection: PER_CONNECTION });
  runs.push(
    await measure(
      'sluice',
      (i) => pool.send({ envelope: { from: 'demo@example.com', to: [`user${i}@example.com`] }, body: body(i) }),
      () => pool.close(),
    ),
  );
  await server.close();

  // One round trip per message (CHUNKING: envelope and content in one write) plus connection setup
  // (connect + greeting ≈ 1.5 RTT, EHLO 1 RTT), for each of the MESSAGES / PER_CONNECTION connections,
  // CONNECTIONS at a time.
  const connections = Math.ceil(MESSAGES / PER_CONNECTION);
  const perConnection = (2.5 + PER_CONNECTION) * RTT;
  const floor = (Math.ceil(connections / CONNECTIONS) * perConnection) / 1000;

  const base = runs[0]!;
  console.log(`\n  ${'sender'.padEnd(22)} ${'delivered'.padStart(9)} ${'seconds'.padStart(8)} ${'msg/s'.padStart(8)} ${'vs nodemailer'.padStart(14)} ${'of floor'.padStart(9)}`);
  for (const r of runs) {
    const rate = r.delivered / r.seconds;
    console.log(
      `  ${r.name.padEnd(22)} ${String(r.delivered).padStart(9)} ${r.seconds.toFixed(2).padStart(8)} ${rate.toFixed(0).padStart(8)} ${`${(base.seconds / r.seconds).toFixed(2)}×`.padStart(14)} ${`${((floor / r.seconds) * 100).toFixed(0)} %`.padStart(9)}`,
    );
  }
  console.log(`\n  round-trip floor (one RTT per message + setup): ${floor.toFixed(2)} s`);
  const failed = runs.some((r) => r.other > 0);
  if (failed) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

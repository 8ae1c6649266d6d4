/**
 * `pnpm demo`: the same 1,000 messages through a naive sender (one connection per message), nodemailer's
 * SMTP pool and sluice, to sluice's mock SMTP server with a simulated 50 ms round trip. The server runs
 * in its own process and each sender in another, so no sender slows another down. Prints a progress bar
 * per sender, then a table and the path of an SVG chart. Runs in well under a minute.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ClientResult, SenderName } from './client-process.js';
import { clientConfig, runClient, type Scenario, serverOptions, startServerProcess } from './harness.js';
import { summarise, svg, table } from './report.js';

const scenario: Scenario = {
  name: 'demo',
  rtt: Number(process.env.DEMO_RTT ?? 50),
  connections: 20,
  perConnection: 50,
  messages: Number(process.env.DEMO_MESSAGES ?? 1000),
  size: 2048,
  recipients: 1,
  pipelining: true,
  chunking: true,
  window: 4,
  senders: ['nodemailer-naive', 'nodemailer-pool', 'sluice-bdat'],
};

const LABELS: Partial<Record<SenderName, string>> = {
  'nodemailer-naive': 'naive (1 msg/connection)',
  'nodemailer-pool': "nodemailer's pool",
  'sluice-bdat': 'sluice',
};

function bar(label: string, done: number, total: number, seconds: number): string {
  const width = 32;
  const filled = Math.round((done / total) * width);
  return `  ${label.padEnd(26)} [${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${String(done).padStart(5)}/${total}  ${seconds.toFixed(1).padStart(5)} s`;
}

async function main(): Promise<void> {
  const s = scenario;
  console.log(`sluice demo: ${s.messages} messages of 2 KiB, mock SMTP server at ${s.rtt} ms RTT, ${s.connections} connections × ${s.perConnection} messages each\n`);
  const server = await startServerProcess(serverOptions(s));
  const results: ClientResult[] = [];
  const tty = process.stdout.isTTY;
  try {
    for (const sender of s.senders) {
      await server.clear();
      const label = LABELS[sender] ?? sender;
      const t0 = performance.now();
      let last = 0;
      const draw = (done: number) => {
        last = done;
        if (tty) process.stdout.write(`\r${bar(label, done, s.messages, (performance.now() - t0) / 1000)}`);
      };
      const ticker = setInterval(() => draw(last), 200);
      const result = await runClient(clientConfig(s, sender, server, true), draw);
      clearInterval(ticker);
      const line = bar(label, result.delivered, s.messages, result.seconds);
      process.stdout.write(tty ? `\r${line}\n` : `${line}\n`);
      const { count } = await server.count();
      if (count !== result.delivered) throw new Error(`${label}: ${result.delivered} reported delivered, ${count} received`);
      results.push(result);
    }
  } finally {
    await server.close();
  }
  const summary = summarise(s, [results]);
  console.log(table(summary).replace(/^\n## demo: /, '\n'));
  const dir = path.resolve(process.env.INIT_CWD ?? process.cwd(), 'bench-results');
  mkdirSync(dir, { recursive: true });
  const chart = path.join(dir, 'demo.svg');
  writeFileSync(chart, svg([summary]));
  const sluice = summary.results.find((r) => r.sender === 'sluice-bdat')!;
  console.log(`\n  sluice: ${sluice.vsNodemailer?.toFixed(2)}× nodemailer's pool, ${((sluice.ofFloor ?? 0) * 100).toFixed(0)} % of what the network allows.`);
  console.log(`  chart: ${chart}`);
  if (results.some((r) => r.failed > 0)) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

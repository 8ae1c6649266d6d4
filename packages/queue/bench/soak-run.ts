/**
 * The chaos soak: `messages` jobs, `workers` sluice-worker processes (the CLI), `kills` of them
 * SIGKILLed at random moments and restarted. Then: zero lost (every job completed, rejected or held,
 * every completed job's message received), and duplicates only among held jobs.
 * Used by bench/soak.ts (20 000 messages) and by test/soak.test.ts (a CI-sized run).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startMockServer } from '@sluice/mock-server';
import { MailQueue } from '../src/index.js';
import { benchMessage } from './messages.js';

export interface SoakOptions {
  redisUrl: string;
  /** The bundled sluice-worker CLI. */
  cli: string;
  messages: number;
  workers: number;
  kills: number;
  /** Kills happen at random moments: when the server has received a random 5–75 % of the messages. */
  rtt?: number;
  seed?: number;
  timeout?: number;
}

export interface SoakResult {
  messages: number;
  completed: number;
  rejected: number;
  held: number;
  lost: number;
  received: number;
  duplicates: number;
  duplicatesOutsideHeld: number;
  kills: number;
  seconds: number;
  ok: boolean;
  summary: string;
}

/** Reproducible draws in [0, 1) from a seed: the nth is a hash of (seed, n). */
function rng(seed: number) {
  let n = 0;
  return () => createHash('sha256').update(`${seed}:${n++}`).digest().readUInt32BE(0) / 2 ** 32;
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const random = rng(o.seed ?? Date.now());
  const seen = new Map<string, number>();
  const thresholds = Array.from({ length: o.kills }, () => Math.floor((0.05 + 0.7 * random()) * o.messages)).sort((a, b) => a - b);
  let received = 0;
  let killed = 0;
  const smtp = await startMockServer({
    rtt: o.rtt ?? 5,
    record: false,
    inboxLimit: 1,
    extensions: { starttls: false },
    onMessage: (m) => {
      seen.set(m.to[0]!, (seen.get(m.to[0]!) ?? 0) + 1);
      received++;
      while (thresholds.length > 0 && received >= thresholds[0]!) {
        thresholds.shift();
        killOne();
      }
    },
  });
  const name = `soak-${process.pid}-${Date.now()}`;
  const queue = new MailQueue(name, {
    connection: o.redisUrl,
    defaultJobOptions: { removeOnComplete: false, attempts: 10, backoff: { type: 'fixed', delay: 100 } },
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-soak-'));
  const config = path.join(dir, 'worker.json');
  writeFileSync(
    config,
    JSON.stringify({
      queue: name,
      redis: o.redisUrl,
      pool: { host: smtp.host, port: smtp.port, name: 'soak.sluice.test', maxConnections: 10 },
      budget: { account: name, maxConnections: 20, leaseTtl: 3000 },
      lockDuration: 3000,
      stalledInterval: 1000,
      drainDelay: 1000,
    }),
  );
  const procs = new Set<ChildProcess>();
  const startWorker = () => {
    const child = spawn(process.execPath, [o.cli, '--config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
    procs.add(child);
    child.once('exit', () => procs.delete(child));
    return child;
  };
  // SIGKILL one worker at random, and start a fresh one at once.
  const killOne = () => {
    const victims = [...procs];
    const victim = victims[Math.floor(random() * victims.length)];
    if (!victim) return;
    victim.kill('SIGKILL');
    killed++;
    startWorker();
  };
  const t0 = Date.now();
  try {
    for (let i = 0; i < o.messages; i += 1000) {
      await queue.addBulk(Array.from({ length: Math.min(1000, o.messages - i) }, (_, j) => ({ message: benchMessage(i + j) })));
    }
    for (let i = 0; i < o.workers; i++) startWorker();
    const deadline = Date.now() + (o.timeout ?? 300_000);
    for (;;) {
      const c = await queue.counts();
      if (c.waiting + c.active + c.delayed === 0 && c.completed + c.failed === o.messages) break;
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const seconds = (Date.now() - t0) / 1000;

    const counts = await queue.counts();
    const held = new Set((await queue.held()).map((h) => h.jobId));
    const rcptOf = new Map<string, string>();
    const completed = await queue.queue.getJobs(['completed'], 0, -1);
    for (const j of completed) rcptOf.set(j.id!, j.data.envelope.to[0]!);
    const failed = await queue.queue.getJobs(['failed'], 0, -1);
    const heldRcpts = new Set<string>();
    for (const j of failed) if (held.has(j.id!)) heldRcpts.add(j.data.envelope.to[0]!);
    const missing = completed.filter((j) => !seen.has(j.data.envelope.to[0]!)).length;
    const lost = o.messages - counts.completed - counts.failed + missing;
    const dups = [...seen].filter(([, n]) => n > 1);
    const outside = dups.filter(([rcpt]) => !heldRcpts.has(rcpt)).length;
    const rejected = counts.failed - held.size;
    const ok = lost === 0 && outside === 0;
    const summary = `soak: ${o.messages} messages, ${o.workers} workers, ${killed} SIGKILLed and restarted: ${counts.completed} completed, ${rejected} rejected/failed, ${held.size} held, ${lost} lost, ${dups.length} duplicates (${outside} outside held) in ${seconds.toFixed(1)} s — ${ok ? 'OK' : 'FAIL'}`;
    return {
      messages: o.messages,
      completed: counts.completed,
      rejected,
      held: held.size,
      lost,
      received: seen.size,
      duplicates: dups.length,
      duplicatesOutsideHeld: outside,
      kills: killed,
      seconds,
      ok,
      summary,
    };
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await queue.close();
    await smtp.close();
  }
}

/**
 * Five SIGKILLs at various moments between accepting and forwarding loses nothing that was acknowledged.
 * The relay runs as a child process (the CLI); the upstream is a mock server in this process.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import nodemailer from 'nodemailer';
import { describe, expect, it } from 'vitest';
import { type RelayProcess, relayArgs, spawnRelay } from './cli-helpers.js';
import { tmpDir, upstream, waitUntil } from './helpers.js';

const KEY = /^X-Key: (\S+)$/m;

describe('crash and restart (SIGKILL)', () => {
  it('delivers every acknowledged message after kills during accepting and during forwarding; duplicates only for messages in flight upstream', async () => {
    const server = await upstream({ rtt: 30, record: true });
    const spool = await tmpDir();
    const args = relayArgs(server.port, spool, '--retry-min', '200ms', '--retry-max', '1s');
    let relay: RelayProcess = await spawnRelay(args);

    const N = 250;
    const STAGE = 50;
    let fed = 0;
    const acked = new Set<string>(); // keys the relay answered 250 to
    const tries = new Map<number, number>();
    const todo: number[] = [];
    let sending = true;
    const sendOne = async (seq: number) => {
      const attempt = (tries.get(seq) ?? 0) + 1;
      tries.set(seq, attempt);
      const key = `${seq}.${attempt}`; // a retried send is a new message: the first may or may not have been spooled
      const transport = nodemailer.createTransport({ host: '127.0.0.1', port: relay.port, ignoreTLS: true, connectionTimeout: 2000, socketTimeout: 5000 });
      try {
        await transport.sendMail({
          envelope: { from: 'app@example.com', to: [`r${seq}@example.com`] },
          raw: `From: app@example.com\r\nTo: r${seq}@example.com\r\nSubject: crash ${seq}\r\nX-Key: ${key}\r\n\r\n${`${'x'.repeat(78)}\r\n`.repeat(25)}`,
        });
        acked.add(key);
      } catch {
        todo.push(seq); // the relay died under us: like a cron job, send it again later
        await sleep(50);
      } finally {
        transport.close();
      }
    };
    const workers = Array.from({ length: 8 }, async () => {
      while (sending) {
        const seq = todo.shift();
        if (seq === undefined) {
          await sleep(20);
          continue;
        }
        await sendOne(seq);
      }
    });

    const upstreamKeys = () => server.inbox.messages.map((m) => KEY.exec(m.raw!.toString('latin1'))?.[1] ?? '?');
    const seenAtKills = new Set<string>();
    const kills: Array<{ when: string; acked: number; upstream: number }> = [];
    const kill = async (when: string) => {
      relay.child.kill('SIGKILL');
      await relay.exited;
      // Bytes the relay wrote before dying may still be on their way through the simulated network.
      await sleep(300);
      for (const k of upstreamKeys()) seenAtKills.add(k);
      kills.push({ when, acked: acked.size, upstream: server.inbox.messages.length });
    };

    // Each stage hands the senders STAGE more messages, so that every kill finds them sending.
    const feed = () => {
      for (const end = Math.min(N, fed + STAGE); fed < end; fed++) todo.push(fed);
      return acked.size;
    };
    const forwarding = async (what: string) => {
      const base = server.inbox.messages.length;
      await waitUntil(() => server.inbox.messages.length >= base + 5, 10_000, what);
    };

    // 1. While local clients are sending.
    feed();
    await waitUntil(() => acked.size >= 20, 10_000, '20 acknowledged');
    await kill('during accepting');
    relay = await spawnRelay(args);
    // 2. While forwarding: some delivered, more still queued.
    let mark = feed();
    await waitUntil(() => acked.size >= mark + 20, 15_000, '20 more acknowledged');
    await forwarding('forwarding');
    await kill('during forwarding');
    relay = await spawnRelay(args);
    // 3. Right after a restart, while the spool is being replayed.
    await sleep(150);
    await kill('during replay');
    relay = await spawnRelay(args);
    // 4. Accepting again, into segments that follow the replayed ones.
    mark = feed();
    await waitUntil(() => acked.size >= mark + 20, 15_000, '20 more acknowledged after the replays');
    await kill('during accepting, after replays');
    relay = await spawnRelay(args);
    // 5. Forwarding again.
    mark = feed();
    await waitUntil(() => acked.size >= mark + 20, 15_000, '20 more acknowledged');
    await forwarding('forwarding again');
    await kill('during forwarding, after replays');
    relay = await spawnRelay(args);
    while (fed < N) feed();

    await waitUntil(() => new Set([...acked].map((k) => k.split('.')[0])).size === N, 30_000, 'every message acknowledged once');
    sending = false;
    await Promise.all(workers);
    await waitUntil(() => acked.size > 0 && [...acked].every((k) => upstreamKeys().includes(k)), 30_000, 'every acknowledged message upstream');

    // Nothing acknowledged is lost.
    const counts = new Map<string, number>();
    for (const k of upstreamKeys()) counts.set(k, (counts.get(k) ?? 0) + 1);
    for (const k of acked) expect(counts.get(k) ?? 0, `message ${k}`).toBeGreaterThanOrEqual(1);
    // Duplicates only for messages that had reached the upstream before a kill (in flight there).
    const duplicates = [...counts].filter(([, c]) => c > 1).map(([k]) => k);
    for (const k of duplicates) expect(seenAtKills.has(k), `duplicate ${k} was not upstream before a kill`).toBe(true);
    const unacknowledgedDelivered = [...counts.keys()].filter((k) => !acked.has(k)).length;
    console.log(
      `crash test: ${acked.size} acknowledged, ${server.inbox.messages.length} received upstream, ${duplicates.length} duplicate(s) (in flight at a kill), ` +
        `${unacknowledgedDelivered} delivered though never acknowledged (killed between fsync and 250); kills: ${JSON.stringify(kills)}`,
    );
    relay.child.kill('SIGTERM');
    expect(await relay.exited).toBe(0);
    expect(kills).toHaveLength(5);
  }, 120_000);
});

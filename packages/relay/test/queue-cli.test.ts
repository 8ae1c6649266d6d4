import { describe, expect, it } from 'vitest';
import type { QueueItem } from '../src/queue-list.js';
import { relayArgs, runCli, spawnRelay } from './cli-helpers.js';
import { legacySender, tmpDir, upstream } from './helpers.js';

describe('sluice-relay queue and flush', () => {
  it('lists queued, deferred and held messages like mailq, and flush retries the deferred ones now (with the token)', async () => {
    const server = await upstream({
      faults: [
        { command: 'MAIL', sender: 'late@example.com', reply: '451 4.3.0 Try again later' },
        { command: 'DOT', action: 'drop', times: 1 },
        { command: 'BDAT_LAST', action: 'drop', times: 1 },
      ],
    });
    const spool = await tmpDir();
    const args = relayArgs(server.port, spool, '--retry-min', '10m').map((a) => (a === 'off' ? '127.0.0.1:0' : a)); // with the HTTP port
    const relay = await spawnRelay(args);
    const http = `127.0.0.1:${relay.httpPort}`;
    const mail = legacySender(relay.port);
    const deferred = await mail.sendMail({ from: 'late@example.com', to: ['x@example.com', 'y@example.com'], subject: 'later', text: 'x' });
    const deferredId = /queued as (\S+)/.exec(deferred.response)![1];
    await relay.waitForLog((r) => r.msg === 'deferred (transient failure); will retry');
    const held = await mail.sendMail({ from: 'maybe@example.com', to: 'z@example.com', subject: 'maybe', text: 'x' });
    const heldId = /queued as (\S+)/.exec(held.response)![1];
    await relay.waitForLog((r) => String(r.msg).startsWith('unknown outcome upstream'));

    const env = { SLUICE_RELAY_SPOOL: spool }; // where the relay's generated token is
    const listed = await runCli(['queue', '--http', http, '--json'], env);
    expect(listed.code).toBe(0);
    const items = JSON.parse(listed.stdout) as QueueItem[];
    expect(items.map((m) => [m.id, m.state])).toEqual([
      [deferredId, 'deferred'],
      [heldId, 'held'],
    ]);
    const d = items[0];
    expect(d).toMatchObject({ from: 'late@example.com', to: ['x@example.com', 'y@example.com'], attempts: 1 });
    expect(d.size).toBeGreaterThan(0);
    expect(d.ageSeconds).toBeGreaterThanOrEqual(0);
    expect(Date.parse(d.nextAttemptAt!)).toBeGreaterThan(Date.now() + 60_000); // --retry-min 10m
    expect(d.lastError).toContain('451 4.3.0 Try again later');
    expect(items[1]).toMatchObject({ from: 'maybe@example.com', to: ['z@example.com'] });

    const text = await runCli(['queue', '--http', http], env);
    const rows = text.stdout.trimEnd().split('\n');
    expect(rows[0].split(/\s+/).slice(0, 4)).toEqual(['ID', 'AGE', 'SIZE', 'STATE']);
    expect(rows.find((l) => l.startsWith(deferredId))!.split(/\s+/)[3]).toBe('deferred');
    expect(rows.at(-1)).toBe('-- 2 message(s), 1 deferred, 1 held');

    // flush changes state: it needs the relay's token (here: none found in an empty spool directory).
    const noToken = await runCli(['flush', '--http', http], { SLUICE_RELAY_SPOOL: await tmpDir() });
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toContain('(EUNAUTHORIZED)');
    expect(server.inbox.messages).toHaveLength(0);

    server.setFaults([]); // the upstream is fine again
    const flushed = await runCli(['flush', '--http', http], env);
    expect(flushed.code).toBe(0);
    const [delivered] = await server.inbox.waitFor(1, 5000); // long before the 10 minutes
    expect(delivered).toMatchObject({ from: 'late@example.com', to: ['x@example.com', 'y@example.com'] });
    await relay.waitForLog((r) => r.msg === 'delivered' && r.id === deferredId);
    const after = JSON.parse((await runCli(['queue', '--http', http, '--json'], env)).stdout) as QueueItem[];
    expect(after.map((m) => m.id)).toEqual([heldId]);

    // Without a running relay, `queue` reads the spool.
    relay.child.kill('SIGTERM');
    expect(await relay.exited).toBe(0);
    const offline = await runCli(['queue', '--spool', spool, '--json']);
    expect((JSON.parse(offline.stdout) as QueueItem[]).map((m) => [m.id, m.state])).toEqual([[heldId, 'held']]);
    const down = await runCli(['flush', '--http', http], env);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/no relay answers/);
  });
});

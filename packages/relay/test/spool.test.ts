/**
 * The spool on a real file system: batches in the segment log, recovery by another instance (what a
 * restart after SIGKILL sees), torn tails, tombstones, moves out of a segment, files for large messages.
 */
import { appendFile, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FILE_THRESHOLD, newId, SizeExceededError, Spool, type SpoolHeader } from '../src/spool.js';
import { decodeRecords } from '../src/spool-format.js';
import { tmpDir } from './helpers.js';

const headerOf = (i: number): SpoolHeader => ({ v: 1, id: newId(), from: 'app@example.com', to: [`r${i}@example.com`], receivedAt: Date.now() });
const bodyOf = (i: number) => Buffer.from(`Subject: m${i}\r\n\r\n${'x'.repeat(76)}\r\n`.repeat(1 + (i % 5)));

async function spoolWith(n: number): Promise<{ spool: Spool; dir: string; ids: string[] }> {
  const dir = await tmpDir();
  const spool = new Spool(dir);
  await spool.init();
  const headers = Array.from({ length: n }, (_, i) => headerOf(i));
  await Promise.all(headers.map((h, i) => spool.accept(h, bodyOf(i))));
  return { spool, dir, ids: headers.map((h) => h.id) };
}

const segmentFiles = async (dir: string) => (await readdir(path.join(dir, 'segments'))).sort();

describe('spool: segment log', () => {
  it('accepts concurrent messages into one segment, and another instance replays every one byte for byte', async () => {
    const { spool, dir, ids } = await spoolWith(50);
    expect(await segmentFiles(dir)).toEqual(['000000000001.log']);
    expect(await readdir(path.join(dir, 'queue'))).toEqual([]);
    const records = decodeRecords(await readFile(path.join(dir, 'segments', '000000000001.log')));
    expect(records.torn).toBe(false);
    expect(records.records.map((r) => r.header.id).sort()).toEqual([...ids].sort());

    const again = new Spool(dir); // a restart: nothing of the first instance's memory
    const { recovered, torn } = await again.init();
    expect({ recovered, torn }).toEqual({ recovered: 50, torn: 0 });
    expect(await again.list('queue')).toEqual([...ids].sort());
    for (const [i, id] of ids.entries()) {
      const { header, body } = await again.read('queue', id);
      expect(header).toMatchObject({ id, to: [`r${i}@example.com`] });
      expect(body.equals(bodyOf(i))).toBe(true);
      expect(await again.readHeader('queue', id)).toEqual(header);
    }
    await spool.close();
    await again.close();
  });

  it('a torn tail (a batch cut short by a kill, never acknowledged) is left out; the whole records before it are replayed', async () => {
    const { spool, dir, ids } = await spoolWith(3);
    await spool.close();
    const log = path.join(dir, 'segments', '000000000001.log');
    const whole = await readFile(log);
    // Half of a fourth record, as a kill in the middle of a write leaves it.
    const fourth = await spoolWith(1);
    const record = await readFile(path.join(fourth.dir, 'segments', '000000000001.log'));
    await appendFile(log, record.subarray(0, record.length >> 1));
    const again = new Spool(dir);
    expect(await again.init()).toMatchObject({ recovered: 3, torn: 1 });
    expect(await again.list('queue')).toEqual([...ids].sort());
    // A corrupted byte in the last whole record: its CRC no longer matches, so it is not replayed as if whole.
    const flipped = Buffer.from(whole);
    flipped[flipped.length - 3] ^= 0xff;
    await writeFile(log, flipped);
    const third = new Spool(dir);
    expect(await third.init()).toMatchObject({ recovered: 2, torn: 1 });
    await again.close();
    await third.close();
    await fourth.spool.close();
  });

  it('removed messages stay removed across a restart, and a segment with nothing live is deleted', async () => {
    const { spool, dir, ids } = await spoolWith(10);
    await Promise.all(ids.slice(0, 4).map((id) => spool.remove('queue', id)));
    expect(await spool.list('queue')).toEqual(ids.slice(4).sort());
    const again = new Spool(dir);
    expect(await again.init()).toMatchObject({ recovered: 6 });
    expect(await again.list('queue')).toEqual(ids.slice(4).sort());
    for (const id of ids.slice(4)) await again.remove('queue', id);
    await spool.close();
    await again.close();
    const third = new Spool(dir);
    expect(await third.init()).toMatchObject({ recovered: 0 });
    expect(await segmentFiles(dir)).toEqual([]);
    expect(await third.list('queue')).toEqual([]);
  });

  it('a message with delivery state moves into a file of its own; a crash between the copy and the tombstone replays it once', async () => {
    const { spool, dir, ids } = await spoolWith(3);
    const state = { attempts: 1, nextAttemptAt: Date.now() + 60_000, lastError: '451 later' };
    await spool.writeMeta('queue', ids[0], state, false);
    expect((await readdir(path.join(dir, 'queue'))).sort()).toEqual([`${ids[0]}.json`, `${ids[0]}.msg`]);
    expect(await spool.readMeta('queue', ids[0])).toEqual(state);
    const moved = await spool.read('queue', ids[0]);
    expect(moved.body.equals(bodyOf(0))).toBe(true);
    // The move of ids[1] cut short: its file written, its record not yet done.
    const { header, body } = await spool.read('queue', ids[1]);
    const copy = new Spool(dir);
    await copy.enqueue(header, body);
    await spool.close();
    const again = new Spool(dir);
    expect(await again.init()).toMatchObject({ recovered: 2 });
    expect(await again.list('queue')).toEqual([...ids].sort());
    expect(await again.readMeta('queue', ids[0])).toEqual(state);
    const done = (await readFile(path.join(dir, 'segments', '000000000001.done'), 'latin1')).split('\n').filter(Boolean);
    expect(done.sort()).toEqual([ids[0], ids[1]].sort());
    await again.remove('queue', ids[1]);
    expect(await again.list('queue')).toEqual([ids[0], ids[2]].sort());
    await again.close();
  });

  it('moves a message from a segment to held/ and copies one to dead/ as one-file messages', async () => {
    const { spool, dir, ids } = await spoolWith(2);
    await spool.move('queue', 'held', ids[0], { heldAt: 1, reason: 'unknown outcome' });
    await spool.copy('queue', 'dead', ids[1], `${ids[1]}.0`, { deadAt: 1, reason: 'permanent failure' });
    expect(await spool.list('queue')).toEqual([ids[1]]);
    expect(await spool.list('held')).toEqual([ids[0]]);
    expect(await spool.list('dead')).toEqual([`${ids[1]}.0`]);
    const held = await readFile(path.join(dir, 'held', `${ids[0]}.msg`), 'latin1');
    expect(held).toMatch(/^SLUICE-SPOOL\/1 \d+\n\{/);
    expect((await spool.read('held', ids[0])).body.equals(bodyOf(0))).toBe(true);
    expect((await spool.read('dead', `${ids[1]}.0`)).body.equals(bodyOf(1))).toBe(true);
    expect(await spool.exists('held', ids[0])).not.toBeNull();
    expect((await spool.exists('queue', ids[1]))?.size).toBe(bodyOf(1).length); // the message's bytes, not the segment's
    expect(await spool.exists('queue', ids[0])).toBeNull();
    // Released back: a file in queue/, next to the segment.
    await spool.move('held', 'queue', ids[0], { attempts: 1, nextAttemptAt: 0 });
    expect(await spool.list('queue')).toEqual([...ids].sort());
    await spool.close();
  });

  it('a message over FILE_THRESHOLD is streamed into a file of its own; one over maxSize is refused and leaves nothing', async () => {
    const dir = await tmpDir();
    const spool = new Spool(dir);
    await spool.init();
    const big = headerOf(0);
    const chunk = Buffer.alloc(64 * 1024, 'y');
    const chunks = Math.ceil((FILE_THRESHOLD * 1.5) / chunk.length);
    const size = await spool.accept(big, Readable.from(Array.from({ length: chunks }, () => chunk)));
    expect(size).toBe(chunks * chunk.length);
    expect(await readdir(path.join(dir, 'queue'))).toEqual([`${big.id}.msg`]);
    expect((await spool.read('queue', big.id)).body.length).toBe(size);
    const tooBig = headerOf(1);
    await expect(spool.accept(tooBig, Readable.from(Array.from({ length: chunks }, () => chunk)), FILE_THRESHOLD * 1.2)).rejects.toBeInstanceOf(
      SizeExceededError,
    );
    const small = headerOf(2);
    await expect(spool.accept(small, Buffer.alloc(5000), 4000)).rejects.toBeInstanceOf(SizeExceededError);
    expect(await spool.list('queue')).toEqual([big.id]);
    expect(await readdir(path.join(dir, 'tmp'))).toEqual([]);
    await spool.remove('queue', big.id);
    expect(await readdir(path.join(dir, 'queue'))).toEqual([]);
    await spool.close();
  });

  it('starts a new segment once the active one is full, and deletes the full one when its last message leaves', async () => {
    const dir = await tmpDir();
    const spool = new Spool(dir);
    await spool.init();
    const body = Buffer.alloc(900 * 1024, 'z'); // under FILE_THRESHOLD: into the log
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const h = headerOf(i);
      await spool.accept(h, body);
      ids.push(h.id);
    }
    expect(await segmentFiles(dir)).toEqual(['000000000001.log', '000000000002.log']);
    const first = decodeRecords(await readFile(path.join(dir, 'segments', '000000000001.log'))).records.map((r) => r.header.id);
    for (const id of first) await spool.remove('queue', id);
    expect(await segmentFiles(dir)).toEqual(['000000000002.log']); // 1 and its .done are gone; nothing of 2 was removed yet
    expect(await spool.list('queue')).toEqual(ids.filter((id) => !first.includes(id)));
    await spool.close();
  });
});

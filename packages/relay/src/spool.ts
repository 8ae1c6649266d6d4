/**
 * The durable spool. Layout under the spool directory:
 *
 *   segments/       accepted messages, in batches: the segment log (spool-log.ts, spool-format.ts)
 *   tmp/            messages being received into a file (never acknowledged; emptied at start)
 *   queue/<id>.msg  accepted messages waiting for delivery that are not in a segment: larger than
 *                   FILE_THRESHOLD, bounces, released from held/, and any message once it has state
 *   queue/<id>.json delivery state: attempts, next attempt, last error, recipients still to do (optional)
 *   held/<id>.msg   unknown outcome upstream: waits for the operator (`sluice-relay release`)
 *   held/<id>.json  why it is held
 *   dead/<id>.msg   dead letters (permanent failures when so configured, failed bounces)
 *   dead/<id>.json  why
 *
 * The queue is the union of the live segment records and queue/*.msg (a file wins: it is the newer
 * copy when a crash interrupted a move out of a segment).
 *
 * A .msg file is one file with a header, so that a single rename makes it visible atomically:
 *
 *   SLUICE-SPOOL/1 <n>\n      n = length in bytes of the JSON header that follows
 *   {"id":…,"from":…,"to":[…],"receivedAt":…}\n
 *   <the message exactly as received, after dot-unstuffing>
 *
 * Accepting a message = appending it to the active segment; the 250 waits for its batch's fdatasync
 * (group commit: one write and one fdatasync for every message that arrived meanwhile). A message
 * over FILE_THRESHOLD is streamed to tmp/ instead, fsynced, renamed into queue/, and queue/ fsynced.
 */
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { copyFile, link, mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { DirSync, FileWriter, fsyncDir, writeFileDurable } from './spool-files.js';
import { decodeHeader, encodeHeader, type HeldInfo, type SpoolArea, type SpoolHeader } from './spool-format.js';
import { type LogEntry, SegmentLog } from './spool-log.js';

export { DirSync, fsyncDir } from './spool-files.js';
export type { DeadInfo, DeliveryState, HeldInfo, SpoolArea, SpoolDsn, SpoolHeader } from './spool-format.js';
export { decodeHeader, encodeHeader, isValidId, MAGIC, newId } from './spool-format.js';

/** A message larger than this is spooled as a file of its own rather than held in memory for a segment. */
export const FILE_THRESHOLD = 1024 * 1024;
/** Bodies of recently accepted messages kept in memory, so that the first attempt reads nothing from disk. */
const CACHE_BYTES = 64 * 1024 * 1024;

export class SizeExceededError extends Error {}

export class Spool {
  readonly tmpDir: string;
  readonly queueDir: string;
  readonly heldDir: string;
  readonly deadDir: string;
  readonly segmentsDir: string;
  private readonly syncs: Record<SpoolArea, DirSync>;
  private readonly log: SegmentLog;
  /** Set once the segments are read: by init() (which also repairs), or on first use (read-only). */
  private loaded: Promise<void> | null = null;
  /** `loaded` has resolved: the index can be used without waiting. */
  private ready = false;
  private readonly cache = new Map<string, Buffer>();
  private cacheBytes = 0;

  constructor(readonly root: string) {
    this.tmpDir = path.join(root, 'tmp');
    this.queueDir = path.join(root, 'queue');
    this.heldDir = path.join(root, 'held');
    this.deadDir = path.join(root, 'dead');
    this.segmentsDir = path.join(root, 'segments');
    this.syncs = { queue: new DirSync(this.queueDir), held: new DirSync(this.heldDir), dead: new DirSync(this.deadDir) };
    this.log = new SegmentLog(this.segmentsDir, fsyncDir);
  }

  dir(area: SpoolArea): string {
    return area === 'queue' ? this.queueDir : area === 'held' ? this.heldDir : this.deadDir;
  }

  msgPath(area: SpoolArea, id: string): string {
    return path.join(this.dir(area), `${id}.msg`);
  }

  metaPath(area: SpoolArea, id: string): string {
    return path.join(this.dir(area), `${id}.json`);
  }

  /**
   * Creates the directories (mode 0700), removes what a crash left in tmp/ (never acknowledged) and
   * replays the segments: `recovered` live records, `torn` segments whose unacknowledged tail was cut.
   */
  async init(): Promise<{ removedTmp: number; recovered: number; torn: number }> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    for (const d of [this.tmpDir, this.queueDir, this.heldDir, this.deadDir]) await mkdir(d, { recursive: true, mode: 0o700 });
    let removedTmp = 0;
    for (const name of await readdir(this.tmpDir)) {
      await rm(path.join(this.tmpDir, name), { force: true });
      removedTmp++;
    }
    const recovering = this.log.recover(true);
    this.loaded = recovering.then(() => {
      this.ready = true;
    });
    const { records, torn } = await recovering;
    // A record whose move into a file of its own was cut short by a crash: the file is the copy.
    for (const id of await this.fileIds('queue')) if (this.log.entries.has(id)) await this.log.remove(id);
    return { removedTmp, recovered: records, torn };
  }

  /** Closes the segment files (the relay stopped). Using the spool again opens new ones. */
  close(): Promise<void> {
    return this.log.close();
  }

  private async segmentEntry(area: SpoolArea, id: string): Promise<LogEntry | undefined> {
    if (area !== 'queue') return undefined;
    if (!this.ready) {
      this.loaded ??= this.log.recover(false).then(() => {
        this.ready = true;
      });
      await this.loaded;
    }
    return this.log.entries.get(id);
  }

  /**
   * Receives a message and resolves once it is durable: in the segment log when it is at most
   * FILE_THRESHOLD bytes, else in a file of its own. `maxSize` bytes at most: beyond, the stream is
   * drained and SizeExceededError thrown.
   */
  async accept(header: SpoolHeader, content: AsyncIterable<Buffer> | Buffer, maxSize = Number.POSITIVE_INFINITY): Promise<number> {
    const chunks: Buffer[] = [];
    let size = 0;
    let exceeded = false;
    let file: FileWriter | null = null;
    try {
      const source: AsyncIterable<Buffer> | Buffer[] = Buffer.isBuffer(content) ? [content] : content;
      for await (const chunk of source) {
        size += chunk.length;
        if (exceeded || size > maxSize) {
          exceeded = true;
          continue; // keep reading so that the client gets its reply, write nothing more
        }
        if (file) await file.write(chunk);
        else {
          chunks.push(chunk);
          if (size > FILE_THRESHOLD) {
            file = await FileWriter.open(path.join(this.tmpDir, `${header.id}.msg`), [encodeHeader(header), ...chunks]);
            chunks.length = 0;
          }
        }
      }
    } catch (err) {
      await file?.discard();
      throw err;
    }
    if (exceeded) {
      await file?.discard();
      throw new SizeExceededError(`message of ${size} bytes or more exceeds the limit of ${maxSize}`);
    }
    if (file) {
      await file.commit(this.msgPath('queue', header.id));
      await this.syncs.queue.sync();
      return size;
    }
    if (!this.ready) await this.segmentEntry('queue', header.id); // the index is read before anything joins it
    await this.log.append(header, chunks);
    this.remember(header.id, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    return size;
  }

  private remember(id: string, body: Buffer): void {
    this.cache.set(id, body);
    this.cacheBytes += body.length;
    for (const [old, b] of this.cache) {
      if (this.cacheBytes <= CACHE_BYTES) break;
      this.forget(old, b);
    }
  }

  private forget(id: string, body = this.cache.get(id)): void {
    if (body === undefined) return;
    this.cache.delete(id);
    this.cacheBytes -= body.length;
  }

  /** Writes a complete message (a bounce) durably into queue/. */
  async enqueue(header: SpoolHeader, content: Buffer): Promise<void> {
    const file = await FileWriter.open(path.join(this.tmpDir, `${header.id}.msg`), [encodeHeader(header), content]);
    await file.commit(this.msgPath('queue', header.id));
    await this.syncs.queue.sync();
  }

  async read(area: SpoolArea, id: string): Promise<{ header: SpoolHeader; body: Buffer }> {
    const entry = await this.segmentEntry(area, id);
    if (entry && !(await this.hasFile(area, id))) {
      const body = this.cache.get(id) ?? (await this.log.read(entry));
      return { header: entry.header, body };
    }
    const buf = await readFile(this.msgPath(area, id));
    const { header, offset } = decodeHeader(buf);
    return { header, body: buf.subarray(offset) };
  }

  /** Whether a queued message in a segment also has a file: only after a move out was cut short, or in another process. */
  private async hasFile(area: SpoolArea, id: string): Promise<boolean> {
    if (this.cache.has(id)) return false; // accepted by this process, never moved out (forget() on a move)
    return !!(await stat(this.msgPath(area, id)).catch(() => null));
  }

  /** Reads only the header (the first 64 KiB at most). */
  async readHeader(area: SpoolArea, id: string): Promise<SpoolHeader> {
    const entry = await this.segmentEntry(area, id);
    if (entry) return entry.header;
    const fh = await open(this.msgPath(area, id), 'r');
    try {
      const buf = Buffer.alloc(65536);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      let view = buf.subarray(0, bytesRead);
      try {
        return decodeHeader(view).header;
      } catch (err) {
        if (!(err instanceof Error && err.message === 'truncated spool header')) throw err;
        view = await readFile(this.msgPath(area, id));
        return decodeHeader(view).header;
      }
    } finally {
      await fh.close();
    }
  }

  async readMeta<T>(area: SpoolArea, id: string): Promise<T | undefined> {
    if (await this.segmentEntry(area, id)) return undefined; // a message with state is never in a segment
    try {
      return JSON.parse(await readFile(this.metaPath(area, id), 'utf8')) as T;
    } catch {
      return undefined; // absent or torn: the defaults apply
    }
  }

  /** Writes a queued message's state. A message in a segment first moves into a file of its own (so that a message waiting for a retry never pins a segment). */
  async writeMeta(area: SpoolArea, id: string, meta: unknown, durable = true): Promise<void> {
    if (await this.segmentEntry(area, id)) await this.moveOut(area, area, id, id);
    await writeFileDurable(this.metaPath(area, id), `${JSON.stringify(meta)}\n`);
    if (durable) await this.syncs[area].sync();
  }

  /** A segment record becomes `to`/<newId>.msg (durable), then leaves the log. */
  private async moveOut(from: SpoolArea, to: SpoolArea, id: string, newId: string): Promise<void> {
    await this.copyOut(from, to, id, newId);
    this.forget(id);
    await this.log.remove(id);
  }

  private async copyOut(from: SpoolArea, to: SpoolArea, id: string, newId: string): Promise<void> {
    const { header, body } = await this.read(from, id);
    const file = await FileWriter.open(path.join(this.tmpDir, `${newId}.${randomBytes(4).toString('hex')}.msg`), [encodeHeader(header), body]);
    await file.commit(this.msgPath(to, newId));
    await this.syncs[to].sync();
  }

  private async fileIds(area: SpoolArea): Promise<string[]> {
    const names = await readdir(this.dir(area)).catch(() => [] as string[]);
    return names.filter((n) => n.endsWith('.msg')).map((n) => n.slice(0, -4));
  }

  /** Ids of the messages in an area, oldest first (ids sort by time). */
  async list(area: SpoolArea): Promise<string[]> {
    const ids = await this.fileIds(area);
    if (area === 'queue') {
      await this.segmentEntry(area, '');
      const files = new Set(ids);
      for (const id of this.log.entries.keys()) if (!files.has(id)) ids.push(id);
    }
    return ids.sort();
  }

  /** Removes a delivered message (and its state). */
  async remove(area: SpoolArea, id: string): Promise<void> {
    if (await this.segmentEntry(area, id)) {
      const file = await this.hasFile(area, id);
      this.forget(id);
      await this.log.remove(id);
      if (!file) return;
    }
    await unlink(this.msgPath(area, id)).catch(ignoreMissing);
    await unlink(this.metaPath(area, id)).catch(ignoreMissing);
    await this.syncs[area].sync();
  }

  /** Moves a message (and writes its metadata) from one area to another. */
  async move(from: SpoolArea, to: SpoolArea, id: string, meta?: unknown, newId = id): Promise<void> {
    if (meta !== undefined) await writeFileDurable(this.metaPath(to, newId), `${JSON.stringify(meta)}\n`);
    else await unlink(this.metaPath(to, newId)).catch(ignoreMissing);
    if ((await this.segmentEntry(from, id)) && !(await this.hasFile(from, id))) return this.moveOut(from, to, id, newId);
    await rename(this.msgPath(from, id), this.msgPath(to, newId));
    await this.syncs[to].sync();
    await unlink(this.metaPath(from, id)).catch(ignoreMissing);
    await this.syncs[from].sync();
    if (await this.segmentEntry(from, id)) await this.log.remove(id);
  }

  /** A copy (hard link when possible) of a message into another area, the original staying. */
  async copy(from: SpoolArea, to: SpoolArea, id: string, newId: string, meta: unknown): Promise<void> {
    await writeFileDurable(this.metaPath(to, newId), `${JSON.stringify(meta)}\n`);
    const dest = this.msgPath(to, newId);
    await unlink(dest).catch(ignoreMissing);
    if ((await this.segmentEntry(from, id)) && !(await this.hasFile(from, id))) return this.copyOut(from, to, id, newId);
    await link(this.msgPath(from, id), dest).catch(() => copyFile(this.msgPath(from, id), dest));
    await this.syncs[to].sync();
  }

  /** The message's file; for a message in a segment, that segment's file with `size` the message's bytes. */
  async exists(area: SpoolArea, id: string): Promise<Stats | null> {
    const file = await stat(this.msgPath(area, id)).catch(() => null);
    if (file) return file;
    const entry = await this.segmentEntry(area, id);
    const segment = entry ? await stat(this.log.file(entry.segment.seq, 'log')).catch(() => null) : null;
    return segment && entry ? Object.assign(segment, { size: entry.length }) : null;
  }

  /** What `status` shows of held messages (unknown outcomes waiting for the operator). */
  async describeHeld(ids: string[]): Promise<HeldEntry[]> {
    const held: HeldEntry[] = [];
    for (const id of ids) {
      try {
        const h = await this.readHeader('held', id);
        const info = await this.readMeta<HeldInfo>('held', id);
        held.push({
          id,
          from: h.from,
          to: info?.remaining ?? h.to,
          heldAt: new Date(info?.heldAt ?? h.receivedAt).toISOString(),
          reason: info?.reason ?? 'held',
        });
      } catch {
        // released or removed meanwhile
      }
    }
    return held;
  }
}

export interface HeldEntry {
  id: string;
  from: string;
  to: string[];
  heldAt: string;
  reason: string;
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}

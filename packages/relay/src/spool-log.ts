/**
 * The segment log: where accepted messages go in batches, so that a batch costs one write and one
 * fdatasync instead of a file, a rename and a directory fsync per message (group commit).
 *
 *   segments/<seq>.log   append-only records (spool-format.ts), <seq> 12 digits, rising
 *   segments/<seq>.done  append-only ids, one a line: the records of <seq>.log that left the queue
 *
 * Rules:
 * - A record is acknowledged (its `append` resolves) only once it is written and an fdatasync that
 *   started after its write has completed. Each append is written at once; fdatasyncs run one at a
 *   time, each covering every write completed before it: the batch is what was written while the
 *   previous fdatasync ran, and an append with no fdatasync running starts one at once. A
 *   new segment's creation is made durable (directory fsync) before anything in it is acknowledged.
 * - A segment is appended to by one process only, and only until it reaches SEGMENT_BYTES or a write
 *   fails; after a restart every old segment is read-only.
 * - Removal appends the id to the .done file, also group-committed. When every record of a retired
 *   segment is done, the .log is unlinked, the directory fsynced, then the .done unlinked (never the
 *   other way round: a .log without its .done would replay delivered messages).
 * - Recovery reads each .log up to its first record that is not whole (a torn tail was never
 *   acknowledged), minus the ids in its .done.
 */
import { constants, writeSync } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { decodeRecords, encodeRecord, type SpoolHeader } from './spool-format.js';

/** A segment takes no new batch beyond this size. */
export const SEGMENT_BYTES = 8 * 1024 * 1024;

type Waiter = { resolve(): void; reject(err: Error): void };

/**
 * An append-only file with group commit. An append is written at once, synchronously (a small
 * write into the page cache costs microseconds, less than a round trip through libuv's thread pool,
 * and a SIGKILL, which keeps the page cache, then loses nothing already handed to `append`). The
 * fdatasyncs run one at a time off the event loop: when none is running, an append starts one at
 * once (a lone writer waits for no batch and no timer); what is appended while one runs waits for
 * the next, which starts as soon as it completes and covers all of them (the classic group commit).
 */
export class AppendFile {
  /** Written, waiting for an fdatasync that starts after their write. */
  private unsynced: Waiter[] = [];
  private syncing: Promise<void> | null = null;
  /** Set after a failed write or fdatasync: what follows might land after garbage, so nothing more is written. */
  failed: Error | null = null;

  constructor(
    readonly fh: FileHandle,
    /** Bytes in the file: the offset of the next append. */
    public size: number,
  ) {}

  /** Resolves once `buf` is written and fdatasynced. Its offset is `size` before the call. */
  append(buf: Buffer): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    try {
      let written = 0;
      while (written < buf.length) written += writeSync(this.fh.fd, buf, written, buf.length - written);
    } catch (err) {
      this.fail(err as Error);
      return Promise.reject(this.failed);
    }
    this.size += buf.length;
    const done = new Promise<void>((resolve, reject) => this.unsynced.push({ resolve, reject }));
    this.sync();
    return done;
  }

  /** Resolves once nothing is waiting for its fdatasync. */
  async idle(): Promise<void> {
    while (this.syncing) await this.syncing;
  }

  private sync(): void {
    if (this.syncing || this.unsynced.length === 0 || this.failed) return;
    const waiters = this.unsynced;
    this.unsynced = [];
    this.syncing = this.fh.datasync().then(
      () => {
        for (const w of waiters) w.resolve();
      },
      (err: Error) => {
        for (const w of waiters) w.reject(err);
        this.fail(err);
      },
    );
    this.syncing.finally(() => {
      this.syncing = null;
      this.sync();
    });
  }

  private fail(err: Error): void {
    this.failed ??= err;
    for (const w of this.unsynced.splice(0)) w.reject(this.failed);
  }
}

export interface Segment {
  seq: number;
  /** The appender, while this process appends to it. */
  log: AppendFile | null;
  /** For reading a segment this process did not write. */
  reader: Promise<FileHandle> | null;
  done: Promise<AppendFile> | null;
  /** Records not done yet (appends in progress included). */
  live: number;
  /** Still taking batches. */
  active: boolean;
}

export interface LogEntry {
  segment: Segment;
  header: SpoolHeader;
  /** Where the body is in the segment, and its length. */
  offset: number;
  length: number;
}

const SEQ = /^(\d{12})\.(log|done)$/;

export class SegmentLog {
  /** Live records by id. */
  readonly entries = new Map<string, LogEntry>();
  private readonly segments = new Map<number, Segment>();
  private current: Segment | null = null;
  private creating: Promise<Segment> | null = null;
  private nextSeq = 1;

  constructor(
    readonly dir: string,
    private readonly fsyncDir: (dir: string) => Promise<void>,
  ) {}

  file(seq: number, kind: 'log' | 'done'): string {
    return path.join(this.dir, `${String(seq).padStart(12, '0')}.${kind}`);
  }

  /**
   * Reads the segments into `entries`. With `repair`, also deletes segments with nothing live and
   * .done files without their .log (what a crash between the two unlinks leaves).
   */
  async recover(repair: boolean): Promise<{ records: number; torn: number }> {
    if (repair) await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const seqs = new Map<number, Set<string>>();
    for (const name of names) {
      const m = SEQ.exec(name);
      if (!m) continue;
      const seq = Number(m[1]);
      if (!seqs.has(seq)) seqs.set(seq, new Set());
      seqs.get(seq)!.add(m[2]);
      if (seq >= this.nextSeq) this.nextSeq = seq + 1;
    }
    let records = 0;
    let torn = 0;
    for (const [seq, kinds] of [...seqs].sort((a, b) => a[0] - b[0])) {
      if (this.segments.has(seq)) continue;
      if (!kinds.has('log')) {
        if (repair) await unlink(this.file(seq, 'done')).catch(ignoreMissing);
        continue;
      }
      const buf = await readFile(this.file(seq, 'log'));
      const doneIds = kinds.has('done') ? new Set((await readFile(this.file(seq, 'done'), 'latin1')).split('\n')) : new Set<string>();
      const decoded = decodeRecords(buf);
      if (decoded.torn) torn++;
      const segment: Segment = { seq, log: null, reader: null, done: null, live: 0, active: false };
      for (const r of decoded.records) {
        if (doneIds.has(r.header.id) || this.entries.has(r.header.id)) continue;
        this.entries.set(r.header.id, { segment, header: r.header, offset: r.offset, length: r.length });
        segment.live++;
        records++;
      }
      this.segments.set(seq, segment);
      if (repair && segment.live === 0) await this.drop(segment);
    }
    return { records, torn };
  }

  /** Appends a message to the active segment; resolves once it is durable (and in `entries`). */
  async append(header: SpoolHeader, body: Buffer[]): Promise<void> {
    const record = encodeRecord(header, body);
    const length = body.reduce((n, b) => n + b.length, 0);
    const segment = this.usable(this.current) ? this.current : await this.activeSegment();
    const log = segment.log!;
    const entry: LogEntry = { segment, header, offset: log.size + record.length - length, length };
    segment.live++;
    try {
      await log.append(record);
    } catch (err) {
      segment.live--;
      this.retire(segment);
      throw err;
    }
    this.entries.set(header.id, entry);
  }

  /** The body of a live record. */
  async read(entry: LogEntry): Promise<Buffer> {
    const segment = entry.segment;
    const fh = segment.log ? segment.log.fh : await (segment.reader ??= open(this.file(segment.seq, 'log'), 'r'));
    const buf = Buffer.allocUnsafe(entry.length);
    let got = 0;
    while (got < entry.length) {
      const { bytesRead } = await fh.read(buf, got, entry.length - got, entry.offset + got);
      if (bytesRead === 0) throw new Error(`segment ${segment.seq} is shorter than its record ${entry.header.id}`);
      got += bytesRead;
    }
    return buf;
  }

  /** The record left the queue: durable once resolved. A retired segment with nothing live is deleted. */
  async remove(id: string): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    const segment = entry.segment;
    segment.live--;
    try {
      segment.done ??= open(this.file(segment.seq, 'done'), 'a').then((fh) => new AppendFile(fh, 0));
      await (await segment.done).append(Buffer.from(`${id}\n`, 'latin1'));
    } catch (err) {
      this.entries.set(id, entry);
      segment.live++;
      segment.done = null;
      throw err;
    }
    if (segment.live === 0 && !segment.active) await this.drop(segment);
  }

  /** Closes the files (the relay stopped). Anything appended later opens a new segment. */
  async close(): Promise<void> {
    this.current = null;
    for (const s of [...this.segments.values()]) {
      s.active = false;
      await closeFiles(s);
    }
  }

  private usable(s: Segment | null): s is Segment {
    return !!s && s.active && !!s.log && !s.log.failed && s.log.size < SEGMENT_BYTES;
  }

  private async activeSegment(): Promise<Segment> {
    for (;;) {
      if (this.usable(this.current)) return this.current;
      if (this.current) this.retire(this.current);
      this.creating ??= this.create().finally(() => {
        this.creating = null;
      });
      const created = await this.creating;
      if (this.usable(created)) return created;
    }
  }

  private async create(): Promise<Segment> {
    const seq = this.nextSeq++;
    const fh = await open(this.file(seq, 'log'), constants.O_CREAT | constants.O_EXCL | constants.O_RDWR | constants.O_APPEND, 0o600);
    try {
      await this.fsyncDir(this.dir); // the new name survives a crash before its first record is acknowledged
    } catch (err) {
      await fh.close();
      throw err;
    }
    const segment: Segment = { seq, log: new AppendFile(fh, 0), reader: null, done: null, live: 0, active: true };
    this.segments.set(seq, segment);
    this.current = segment;
    return segment;
  }

  private retire(segment: Segment): void {
    if (!segment.active) return;
    segment.active = false;
    if (this.current === segment) this.current = null;
    if (segment.live === 0) this.drop(segment).catch(() => {}); // else the last remove drops it (or recovery does)
  }

  private async drop(segment: Segment): Promise<void> {
    if (!this.segments.has(segment.seq)) return;
    this.segments.delete(segment.seq);
    await closeFiles(segment);
    await unlink(this.file(segment.seq, 'log')).catch(ignoreMissing);
    await this.fsyncDir(this.dir);
    await unlink(this.file(segment.seq, 'done')).catch(ignoreMissing);
  }
}

async function closeFiles(s: Segment): Promise<void> {
  const done = await s.done?.catch(() => null);
  await s.log?.idle();
  await done?.idle();
  await s.log?.fh.close().catch(() => {});
  await done?.fh.close().catch(() => {});
  await (await s.reader?.catch(() => null))?.close().catch(() => {});
  s.log = null;
  s.done = null;
  s.reader = null;
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}

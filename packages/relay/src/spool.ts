/**
 * The durable spool. Layout under the spool directory:
 *
 *   tmp/            messages being received (never acknowledged; emptied at start)
 *   queue/<id>.msg  accepted messages waiting for delivery (immutable once renamed here)
 *   queue/<id>.json delivery state: attempts, next attempt, last error, recipients still to do (optional)
 *   held/<id>.msg   unknown outcome upstream: waits for the operator (`sluice-relay release`)
 *   held/<id>.json  why it is held
 *   dead/<id>.msg   dead letters (permanent failures when so configured, failed bounces)
 *   dead/<id>.json  why
 *
 * A .msg file is one file with a header, so that a single rename makes it visible atomically:
 *
 *   SLUICE-SPOOL/1 <n>\n      n = length in bytes of the JSON header that follows
 *   {"id":…,"from":…,"to":[…],"receivedAt":…}\n
 *   <the message exactly as received, after dot-unstuffing>
 *
 * Accepting = write to tmp/, fsync the file, rename into queue/, fsync queue/ (one directory fsync
 * shared by every message renamed meanwhile: group commit). Only then is 250 sent.
 */
import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { copyFile, link, mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';

export const MAGIC = 'SLUICE-SPOOL/1';

export interface SpoolDsn {
  ret?: 'FULL' | 'HDRS';
  envid?: string;
  /** Per recipient: NOTIFY values (NEVER or SUCCESS/FAILURE/DELAY) */
  notify?: Record<string, string[]>;
  orcpt?: Record<string, string>;
}

export interface SpoolHeader {
  v: 1;
  id: string;
  /** Reverse path; '' is the null sender (a bounce). */
  from: string;
  to: string[];
  /** ms since epoch, when the 250 was about to be sent (the start of the maximum age). */
  receivedAt: number;
  dsn?: SpoolDsn;
  /** Who handed it to us. */
  client?: { address?: string; helo?: string; user?: string };
  /** Set on bounces this relay generated: the id of the original. */
  bounceOf?: string;
}

export interface DeliveryState {
  attempts: number;
  /** ms since epoch. */
  nextAttemptAt: number;
  lastError?: string;
  /** Recipients still to deliver, when some were already done (delivered or bounced). */
  remaining?: string[];
}

export interface HeldInfo {
  heldAt: number;
  reason: string;
  error?: string;
  remaining?: string[];
  attempts?: number;
}

export interface DeadInfo {
  deadAt: number;
  reason: string;
  failures?: Array<{ address: string; status: string; diagnostic: string }>;
}

export type SpoolArea = 'queue' | 'held' | 'dead';

/** Sortable (time first) and unique: 9 base-36 chars of time, 10 hex chars of randomness. */
export function newId(now = Date.now()): string {
  return `${now.toString(36).toUpperCase().padStart(9, '0')}${randomBytes(5).toString('hex').toUpperCase()}`;
}

const ID = /^[0-9A-Za-z][0-9A-Za-z._-]{0,80}$/;
export function isValidId(id: string): boolean {
  return ID.test(id);
}

export function encodeHeader(header: SpoolHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  return Buffer.concat([Buffer.from(`${MAGIC} ${json.length}\n`, 'latin1'), json, Buffer.from('\n')]);
}

/** Parses the header at the start of `buf`; returns it and the offset of the message. */
export function decodeHeader(buf: Buffer): { header: SpoolHeader; offset: number } {
  const nl = buf.indexOf(10);
  if (nl === -1 || nl > 64) throw new Error('not a sluice spool file (no header line)');
  const line = buf.toString('latin1', 0, nl);
  const m = /^SLUICE-SPOOL\/1 (\d+)$/.exec(line);
  if (!m) throw new Error('not a sluice spool file (bad magic)');
  const len = Number(m[1]);
  const start = nl + 1;
  if (buf.length < start + len + 1) throw new Error('truncated spool header');
  const header = JSON.parse(buf.toString('utf8', start, start + len)) as SpoolHeader;
  if (header?.v !== 1 || typeof header.id !== 'string' || typeof header.from !== 'string' || !Array.isArray(header.to)) {
    throw new Error('invalid spool header');
  }
  return { header, offset: start + len + 1 };
}

/** fsync a directory so that renames and creations in it survive a crash. Concurrent callers share one fsync. */
export class DirSync {
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;
  constructor(readonly dir: string) {}

  sync(): Promise<void> {
    if (this.next) return this.next;
    if (!this.running) return this.start();
    // A sync is running; it may have started before the caller's rename, so one more after it.
    const next = this.running.then(
      () => this.start(),
      () => this.start(),
    );
    this.next = next;
    return next;
  }

  private start(): Promise<void> {
    if (this.next) this.next = null;
    const p = fsyncDir(this.dir).finally(() => {
      if (this.running === p) this.running = null;
    });
    this.running = p;
    return p;
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(dir, constants.O_RDONLY);
    await fh.sync();
  } catch (err) {
    // Windows cannot open or fsync a directory; there, rename is as durable as it gets.
    if (process.platform !== 'win32') throw err;
  } finally {
    await fh?.close();
  }
}

async function writeFileDurable(file: string, data: Buffer | string, mode = 0o600): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

export class SizeExceededError extends Error {}

export class Spool {
  readonly tmpDir: string;
  readonly queueDir: string;
  readonly heldDir: string;
  readonly deadDir: string;
  private readonly syncs: Record<SpoolArea, DirSync>;

  constructor(readonly root: string) {
    this.tmpDir = path.join(root, 'tmp');
    this.queueDir = path.join(root, 'queue');
    this.heldDir = path.join(root, 'held');
    this.deadDir = path.join(root, 'dead');
    this.syncs = { queue: new DirSync(this.queueDir), held: new DirSync(this.heldDir), dead: new DirSync(this.deadDir) };
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

  /** Creates the directories (mode 0700) and removes what a crash left in tmp/ (never acknowledged). */
  async init(): Promise<{ removedTmp: number }> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    for (const d of [this.tmpDir, this.queueDir, this.heldDir, this.deadDir]) await mkdir(d, { recursive: true, mode: 0o700 });
    let removedTmp = 0;
    for (const name of await readdir(this.tmpDir)) {
      await rm(path.join(this.tmpDir, name), { force: true });
      removedTmp++;
    }
    return { removedTmp };
  }

  /**
   * Receives a message into tmp/, fsyncs it, renames it into queue/ and fsyncs queue/. Resolves once
   * durable. `maxSize` bytes at most: beyond, the stream is drained and SizeExceededError thrown.
   */
  async accept(header: SpoolHeader, content: Readable | Buffer, maxSize = Number.POSITIVE_INFINITY): Promise<number> {
    const tmp = path.join(this.tmpDir, `${header.id}.msg`);
    const fh = await open(tmp, 'wx', 0o600);
    let size = 0;
    let exceeded = false;
    try {
      const pending: Buffer[] = [encodeHeader(header)];
      let pendingBytes = pending[0].length;
      const flush = async () => {
        if (pending.length === 0) return;
        const buf = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes);
        pending.length = 0;
        pendingBytes = 0;
        await fh.write(buf, 0, buf.length);
      };
      const chunks: AsyncIterable<Buffer> | Buffer[] = Buffer.isBuffer(content) ? [content] : (content as AsyncIterable<Buffer>);
      for await (const chunk of chunks) {
        size += chunk.length;
        if (exceeded || size > maxSize) {
          exceeded = true;
          continue; // keep reading so that the client gets its reply, write nothing more
        }
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes >= 256 * 1024) await flush();
      }
      if (!exceeded) {
        await flush();
        await fh.sync();
      }
    } catch (err) {
      await fh.close().catch(() => {});
      await rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    if (exceeded) {
      await rm(tmp, { force: true });
      throw new SizeExceededError(`message of ${size} bytes or more exceeds the limit of ${maxSize}`);
    }
    await rename(tmp, this.msgPath('queue', header.id));
    await this.syncs.queue.sync();
    return size;
  }

  /** Writes a complete message (a bounce) durably into queue/. */
  async enqueue(header: SpoolHeader, content: Buffer): Promise<void> {
    const tmp = path.join(this.tmpDir, `${header.id}.msg`);
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(Buffer.concat([encodeHeader(header), content]));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.msgPath('queue', header.id));
    await this.syncs.queue.sync();
  }

  async read(area: SpoolArea, id: string): Promise<{ header: SpoolHeader; body: Buffer }> {
    const buf = await readFile(this.msgPath(area, id));
    const { header, offset } = decodeHeader(buf);
    return { header, body: buf.subarray(offset) };
  }

  /** Reads only the header (the first 64 KiB at most). */
  async readHeader(area: SpoolArea, id: string): Promise<SpoolHeader> {
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
    try {
      return JSON.parse(await readFile(this.metaPath(area, id), 'utf8')) as T;
    } catch {
      return undefined; // absent or torn: the defaults apply
    }
  }

  async writeMeta(area: SpoolArea, id: string, meta: unknown, durable = true): Promise<void> {
    await writeFileDurable(this.metaPath(area, id), `${JSON.stringify(meta)}\n`);
    if (durable) await this.syncs[area].sync();
  }

  /** Ids of the .msg files in an area, oldest first (ids sort by time). */
  async list(area: SpoolArea): Promise<string[]> {
    const names = await readdir(this.dir(area)).catch(() => [] as string[]);
    return names
      .filter((n) => n.endsWith('.msg'))
      .map((n) => n.slice(0, -4))
      .sort();
  }

  /** Removes a delivered message (and its state). */
  async remove(area: SpoolArea, id: string): Promise<void> {
    await unlink(this.msgPath(area, id)).catch(ignoreMissing);
    await unlink(this.metaPath(area, id)).catch(ignoreMissing);
    await this.syncs[area].sync();
  }

  /** Moves a message (and writes its metadata) from one area to another. */
  async move(from: SpoolArea, to: SpoolArea, id: string, meta?: unknown, newId = id): Promise<void> {
    if (meta !== undefined) await writeFileDurable(this.metaPath(to, newId), `${JSON.stringify(meta)}\n`);
    else await unlink(this.metaPath(to, newId)).catch(ignoreMissing);
    await rename(this.msgPath(from, id), this.msgPath(to, newId));
    await this.syncs[to].sync();
    await unlink(this.metaPath(from, id)).catch(ignoreMissing);
    await this.syncs[from].sync();
  }

  /** A copy (hard link when possible) of a message into another area, the original staying. */
  async copy(from: SpoolArea, to: SpoolArea, id: string, newId: string, meta: unknown): Promise<void> {
    await writeFileDurable(this.metaPath(to, newId), `${JSON.stringify(meta)}\n`);
    const dest = this.msgPath(to, newId);
    await unlink(dest).catch(ignoreMissing);
    await link(this.msgPath(from, id), dest).catch(() => copyFile(this.msgPath(from, id), dest));
    await this.syncs[to].sync();
  }

  async exists(area: SpoolArea, id: string): Promise<Stats | null> {
    return stat(this.msgPath(area, id)).catch(() => null);
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

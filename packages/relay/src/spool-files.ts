/**
 * Durable files: a directory fsync shared by concurrent callers, a whole file written by rename, and
 * a message streamed into tmp/ then committed by fsync and rename (the spool's one-file messages).
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';

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

export async function writeFileDurable(file: string, data: Buffer | string, mode = 0o600): Promise<void> {
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

/** A message being written into tmp/: committed by fsync and rename, or discarded. */
export class FileWriter {
  private constructor(
    private readonly tmp: string,
    private readonly fh: Awaited<ReturnType<typeof open>>,
  ) {}

  static async open(tmp: string, first: Buffer[]): Promise<FileWriter> {
    const w = new FileWriter(tmp, await open(tmp, 'wx', 0o600));
    for (const b of first) await w.write(b);
    return w;
  }

  async write(buf: Buffer): Promise<void> {
    try {
      let written = 0;
      while (written < buf.length) written += (await this.fh.write(buf, written, buf.length - written)).bytesWritten;
    } catch (err) {
      await this.discard();
      throw err;
    }
  }

  async commit(dest: string): Promise<void> {
    try {
      await this.fh.sync();
    } catch (err) {
      await this.discard();
      throw err;
    }
    await this.fh.close();
    await rename(this.tmp, dest);
  }

  async discard(): Promise<void> {
    await this.fh.close().catch(() => {});
    await rm(this.tmp, { force: true });
  }
}

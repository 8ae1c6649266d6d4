import { createReadStream } from 'node:fs';
import { type FileHandle, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes, SluiceError } from './errors.js';

/** A stream body's first bytes are kept in memory up to this; beyond it the whole body goes to a temporary file. */
export const SPOOL_MEMORY_LIMIT = 1024 * 1024;

/**
 * A copy of a stream body as it is read, so that a stream read to its end can be sent again: to the
 * recipients of another transaction ("too many recipients", maxRecipientsPerTransaction) or in a retry
 * after a 4xx. In memory up to `memoryLimit` bytes, then in a file of its own (mode 0600, in a fresh
 * directory under the OS temporary directory) that `dispose()` removes.
 */
export class Spool {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private dir: string | null = null;
  private handle: FileHandle | null = null;

  constructor(private readonly memoryLimit = SPOOL_MEMORY_LIMIT) {}

  /** Keeps a copy of `chunk` (the stream may reuse its buffer). A failure to write the file is a transient EMESSAGE. */
  async write(chunk: Uint8Array): Promise<void> {
    const copy = Buffer.from(chunk);
    this.bytes += copy.length;
    if (!this.dir && this.bytes <= this.memoryLimit) {
      this.chunks.push(copy);
      return;
    }
    try {
      if (!this.handle) {
        this.dir = await mkdtemp(join(tmpdir(), 'sluice-body-'));
        this.handle = await open(join(this.dir, 'body'), 'w', 0o600);
        for (const c of this.chunks) await this.handle.write(c);
        this.chunks = [];
      }
      await this.handle.write(copy);
    } catch (cause) {
      throw spoolError(cause);
    }
  }

  /** The stream ended: its content, as one Buffer or as the path of the file that holds it. */
  async end(): Promise<Buffer | string> {
    if (!this.dir) {
      const body = Buffer.concat(this.chunks, this.bytes);
      this.chunks = [];
      return body;
    }
    try {
      await this.handle?.close();
    } catch (cause) {
      throw spoolError(cause);
    }
    this.handle = null;
    return join(this.dir, 'body');
  }

  /** Drops the copy (removes the file). */
  dispose(): void {
    this.chunks = [];
    const { dir, handle } = this;
    this.dir = null;
    this.handle = null;
    if (dir) void (handle ? handle.close() : Promise.resolve()).catch(() => {}).then(() => rm(dir, { recursive: true, force: true }).catch(() => {}));
  }
}

/** A spooled file, read again from its start. */
export function replay(path: string): AsyncIterable<Uint8Array> {
  return createReadStream(path);
}

function spoolError(cause: unknown): SluiceError {
  const message = `The message body stream could not be kept for another transaction (temporary file): ${(cause as Error)?.message ?? cause}`;
  return new SluiceError(ErrorCodes.EMESSAGE, message, { cause, permanent: false, command: 'DATA' });
}

/**
 * The scheduler: which spooled messages are due, how many are handed to the upstream at once, and
 * when the queue is idle. It knows nothing of SMTP: `deliver` decides what an attempt's outcome does.
 */
import { setMaxListeners } from 'node:events';
import Denque from 'denque';
import type { RelayLogger } from './log.js';
import type { DeadInfo, DeliveryState, Spool } from './spool.js';

/** The spool's delivery state, and how many delay warnings went out (see Delivery.delayWarning). */
export type QueueState = DeliveryState & { delayWarnings?: number };

export interface Entry {
  id: string;
  receivedAt: number;
  state: QueueState;
  /** Handed to `deliver` and not settled yet. */
  busy: boolean;
  /** In the ready FIFO. */
  ready: boolean;
}

export interface QueueOptions {
  spool: Spool;
  log: RelayLogger;
  /** Messages handed to the upstream at once. */
  maxInFlight: number;
  /** Bytes of message content held in memory for attempts at once. */
  maxInFlightBytes: number;
  /** How often due messages are looked for (ms): the shortest retry delay, at most 1 s. */
  tickInterval: number;
  /** How often queue/ is rescanned for released messages (ms). */
  scanInterval: number;
  /** After a local failure (disk) in `deliver`, the message waits this long (ms). */
  localRetryDelay: number;
  /** One delivery attempt; it decides what the outcome does to the message (see delivery.ts). */
  deliver(entry: Entry): Promise<void>;
}

/** A spool file that cannot be parsed goes to dead/ (with why), so that it never blocks the queue. */
export async function quarantine(spool: Spool, log: RelayLogger, id: string, err: unknown): Promise<void> {
  log.error('unreadable spool file moved to dead/', { id, error: (err as Error).message });
  await spool.move('queue', 'dead', id, { deadAt: Date.now(), reason: `unreadable: ${(err as Error).message}` } satisfies DeadInfo);
}

export class Queue {
  readonly entries = new Map<string, Entry>();
  /** Aborted at stop(): messages still waiting in the pool (not on the wire) stay spooled. */
  readonly abort = new AbortController();
  inFlight = 0;
  inFlightBytes = 0;
  stopping = false;
  private readonly ready = new Denque<Entry>();
  private readonly running = new Set<Promise<void>>();
  private idleWaiters: Array<() => void> = [];
  private timers: NodeJS.Timeout[] = [];

  constructor(private readonly o: QueueOptions) {
    setMaxListeners(0, this.abort.signal); // one listener per message waiting in the pool
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  add(id: string, receivedAt: number, state?: DeliveryState): Entry {
    const entry: Entry = { id, receivedAt, state: state ?? { attempts: 0, nextAttemptAt: 0 }, busy: false, ready: false };
    this.entries.set(id, entry);
    if (entry.state.nextAttemptAt <= Date.now()) this.markReady(entry);
    return entry;
  }

  /** The message left the queue (delivered, held, dead, or gone from the spool). */
  forget(id: string): void {
    this.entries.delete(id);
  }

  /** Reads a queued message's header and state from the spool into the queue. */
  async load(id: string): Promise<void> {
    try {
      const header = await this.o.spool.readHeader('queue', id);
      const state = await this.o.spool.readMeta<QueueState>('queue', id);
      if (!this.entries.has(id)) this.add(id, header.receivedAt, state);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      await quarantine(this.o.spool, this.o.log, id, err);
    }
  }

  /** Starts the timers: due retries, and the rescan that finds messages released into queue/ by the CLI. */
  start(): void {
    const tick = setInterval(() => {
      const now = Date.now();
      for (const entry of this.entries.values()) if (!entry.busy && !entry.ready && entry.state.nextAttemptAt <= now) this.markReady(entry);
      this.pump();
    }, this.o.tickInterval);
    const scan = setInterval(() => {
      this.rescan().catch((err) => this.o.log.error('rescanning queue/ failed; trying again at the next scan', { error: (err as Error).message }));
    }, this.o.scanInterval);
    tick.unref();
    scan.unref();
    this.timers.push(tick, scan);
    this.pump();
  }

  async rescan(): Promise<void> {
    if (this.stopping) return;
    for (const id of await this.o.spool.list('queue')) if (!this.entries.has(id)) await this.load(id);
    this.pump();
  }

  /** Every message due now, deferred ones included. */
  flush(): void {
    for (const e of this.entries.values()) {
      e.state.nextAttemptAt = 0;
      this.markReady(e);
    }
    this.pump();
  }

  pump(): void {
    const o = this.o;
    while (!this.stopping && this.ready.length > 0 && this.inFlight < o.maxInFlight && this.inFlightBytes < o.maxInFlightBytes) {
      const entry = this.ready.shift()!;
      entry.ready = false;
      if (this.entries.get(entry.id) !== entry || entry.busy) continue;
      entry.busy = true;
      this.inFlight++;
      const p = o
        .deliver(entry)
        .catch((err) => {
          // A local failure (disk): keep the message, try again later.
          o.log.error('internal error while delivering; will retry', { id: entry.id, error: (err as Error).message });
          entry.state.nextAttemptAt = Date.now() + o.localRetryDelay;
        })
        .finally(() => {
          entry.busy = false;
          this.inFlight--;
          this.running.delete(p);
          if (this.entries.get(entry.id) === entry && entry.state.nextAttemptAt <= Date.now() && !this.stopping) this.markReady(entry);
          this.pump();
          this.checkIdle();
        });
      this.running.add(p);
    }
  }

  /** Seconds since the oldest queued message arrived, or null when the queue is empty. */
  oldestAge(): number | null {
    let min = Number.POSITIVE_INFINITY;
    for (const e of this.entries.values()) if (e.receivedAt < min) min = e.receivedAt;
    return min === Number.POSITIVE_INFINITY ? null : Math.max(0, (Date.now() - min) / 1000);
  }

  deferred(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.state.attempts > 0 && !e.busy) n++;
    return n;
  }

  idle(timeoutMs: number): Promise<void> {
    if (this.entries.size === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`relay not idle after ${timeoutMs} ms (queue ${this.entries.size}, in flight ${this.inFlight})`)), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Stops scheduling; aborts what waits in the pool. Resolves true when the attempts on the wire settled within `timeoutMs`. */
  async stop(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    this.abort.abort();
    return this.settled(timeoutMs);
  }

  /** Resolves true once every attempt has settled, false after `timeoutMs`. */
  settled(timeoutMs: number): Promise<boolean> {
    const all = Promise.allSettled([...this.running]).then(() => true);
    return Promise.race([all, new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs).unref())]);
  }

  private markReady(entry: Entry): void {
    if (entry.ready || entry.busy) return;
    entry.ready = true;
    this.ready.push(entry);
  }

  private checkIdle(): void {
    if (this.entries.size === 0 && this.inFlight === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}

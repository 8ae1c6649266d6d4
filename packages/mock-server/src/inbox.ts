import { MockServerError } from './errors.js';
import type { Inbox, ReceivedMessage } from './types.js';

interface Waiter {
  count: number;
  resolve: (messages: ReceivedMessage[]) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export class MemoryInbox implements Inbox {
  private list: ReceivedMessage[] = [];
  /** Messages accepted since start/clear(), including those trimmed by `inboxLimit`. */
  private total = 0;
  private readonly waiters = new Set<Waiter>();

  constructor(private readonly limit: () => number) {}

  get messages(): ReceivedMessage[] {
    return this.list;
  }

  get count(): number {
    return this.total;
  }

  add(message: ReceivedMessage): void {
    this.list.push(message);
    this.total++;
    const limit = this.limit();
    while (this.list.length > limit) this.list.shift();
    if (this.waiters.size === 0) return;
    for (const waiter of this.waiters) {
      if (this.total >= waiter.count) {
        clearTimeout(waiter.timer);
        this.waiters.delete(waiter);
        waiter.resolve(this.list.slice());
      }
    }
  }

  waitFor(count: number, timeoutMs = 10_000): Promise<ReceivedMessage[]> {
    if (this.total >= count) return Promise.resolve(this.list.slice());
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        count,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(new MockServerError('EMOCKTIMEOUT', `inbox.waitFor(${count}): ${this.total} message(s) after ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  filter(predicate: (m: ReceivedMessage) => boolean): ReceivedMessage[] {
    return this.list.filter(predicate);
  }

  /** A new array, so a snapshot taken before stays as it was. Pending waitFor() calls keep waiting,
   * now counting from zero. */
  clear(): void {
    this.list = [];
    this.total = 0;
  }

  /** The server is gone: nothing will arrive. */
  abort(): void {
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new MockServerError('EMOCKCLOSED', `inbox.waitFor(${waiter.count}): the mock server was closed with ${this.total} message(s)`));
    }
    this.waiters.clear();
  }
}

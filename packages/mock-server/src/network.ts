import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import Denque from 'denque';

/** Live network parameters, shared by every link and updated in place by configure(). */
export interface NetParams {
  /** Round-trip time in ms; each direction costs half of it. */
  rtt: number;
  /** Bytes per second per direction per connection; 0 = unlimited. */
  bandwidth: number;
}

const DATA = 0;
const END = 1;
const ABORT = 2;

interface Item {
  at: number;
  kind: typeof DATA | typeof END | typeof ABORT;
  data: Buffer | string | null;
}

/** One direction of the simulated path: a FIFO of items (denque, the repo's one FIFO library), each
 * due at its arrival time. */
class Lane {
  readonly queue = new Denque<Item>();
  timer: NodeJS.Timeout | null = null;
  /** When the last byte queued so far has left the sender (bandwidth serialisation). */
  freeAt = 0;
  /** Arrival time of the last item: arrivals never go backwards, even if rtt shrinks at run time. */
  lastAt = 0;

  get empty(): boolean {
    return this.queue.isEmpty();
  }

  push(item: Item): void {
    this.queue.push(item);
  }

  /** Arrival time of the next item due (the lane must not be empty). */
  get nextAt(): number {
    return (this.queue.peekFront() as Item).at;
  }

  /** Arrival time for `len` bytes sent now. */
  due(len: number, net: NetParams): number {
    const now = performance.now();
    let depart = now;
    if (net.bandwidth > 0) {
      depart = Math.max(now, this.freeAt) + (len * 1000) / net.bandwidth;
      this.freeAt = depart;
    }
    let at = depart + net.rtt / 2;
    if (at < this.lastAt) at = this.lastAt;
    this.lastAt = at;
    return at;
  }

  /** Remove and return the items due by `now` (1 ms slack: timers have ms resolution). */
  takeDue(now: number): Item[] {
    const items: Item[] = [];
    const queue = this.queue;
    while (!queue.isEmpty() && (queue.peekFront() as Item).at <= now + 1) items.push(queue.shift() as Item);
    return items;
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue.clear();
  }
}

/**
 * The simulated path between a client and a session, wrapped around the real socket.
 *
 * Every chunk in each direction is delivered rtt/2 after it was sent, in order (timers, one per
 * direction, not per-command sleeps), so N pipelined commands cost one round trip and N lock-step
 * commands cost N. Chunks due at the same moment are delivered as one read, as a kernel would hand
 * them to a reader that was busy. With rtt 0 and no bandwidth limit everything is synchronous: no
 * timer, no queue, no copy.
 */
export class Link {
  /** Delayed inbound data. Until a consumer attaches (the greeting is itself delayed by one rtt),
   * chunks are held. */
  private sink: ((chunk: Buffer) => void) | null = null;
  private endSink: (() => void) | null = null;
  private held: Buffer[] = [];
  private heldEnd = false;
  private readonly inbound = new Lane();
  private readonly outbound = new Lane();
  private ended = false;
  closed = false;
  onClose: () => void = () => {};

  constructor(
    readonly socket: Socket,
    private readonly net: NetParams,
  ) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('end', () => this.receiveEnd());
    // Resets and write-after-close are the client's business; the 'close' event cleans up.
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.inbound.clear();
      this.outbound.clear();
      this.onClose();
    });
  }

  /** Start delivering inbound data (held chunks first, as one read). */
  attach(onData: (chunk: Buffer) => void, onEnd: () => void): void {
    this.sink = onData;
    this.endSink = onEnd;
    if (this.held.length > 0) {
      const held = this.held;
      this.held = [];
      onData(held.length === 1 ? held[0] : Buffer.concat(held));
    }
    if (this.heldEnd) {
      this.heldEnd = false;
      onEnd();
    }
  }

  /** Stop reading from the socket altogether (a stalled server: the client's writes back up). */
  stopReading(): void {
    this.sink = null;
    this.endSink = null;
    this.socket.pause();
  }

  private receive(chunk: Buffer): void {
    const net = this.net;
    if (net.rtt === 0 && net.bandwidth === 0 && this.inbound.empty) {
      this.deliver(chunk);
      return;
    }
    this.inbound.push({ at: this.inbound.due(chunk.length, net), kind: DATA, data: chunk });
    this.arm(this.inbound, this.fireInbound);
  }

  private receiveEnd(): void {
    if (this.inbound.empty) {
      this.deliverEnd();
      return;
    }
    this.inbound.push({ at: this.inbound.lastAt, kind: END, data: null });
  }

  private deliver(chunk: Buffer): void {
    if (this.sink) this.sink(chunk);
    else this.held.push(chunk);
  }

  private deliverEnd(): void {
    if (this.endSink) this.endSink();
    else this.heldEnd = true;
  }

  private readonly fireInbound = (): void => {
    this.inbound.timer = null;
    const items = this.inbound.takeDue(performance.now());
    const chunks: Buffer[] = [];
    let end = false;
    for (const item of items) {
      if (item.kind === DATA) chunks.push(item.data as Buffer);
      else end = true;
    }
    if (chunks.length > 0) this.deliver(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    if (end) this.deliverEnd();
    if (!this.inbound.empty) this.arm(this.inbound, this.fireInbound);
  };

  /** Send bytes to the client. */
  write(data: Buffer | string): void {
    if (this.closed || this.ended) return;
    const net = this.net;
    if (net.rtt === 0 && net.bandwidth === 0 && this.outbound.empty) {
      this.socket.write(data);
      return;
    }
    const len = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    this.outbound.push({ at: this.outbound.due(len, net), kind: DATA, data });
    this.arm(this.outbound, this.fireOutbound);
  }

  /** Close once everything written so far has arrived; like a real server after QUIT or 421, we do
   * not wait for the client's FIN. */
  end(): void {
    if (this.closed || this.ended) return;
    this.ended = true;
    if (this.outbound.empty) this.socket.destroySoon();
    else this.outbound.push({ at: this.outbound.lastAt, kind: END, data: null });
  }

  /** Abortive close once everything written so far has arrived (a crashed server: what was sent is
   * on the wire, nothing else comes). */
  abort(): void {
    if (this.closed) return;
    this.ended = true;
    if (this.outbound.empty) this.socket.destroy();
    else this.outbound.push({ at: this.outbound.lastAt, kind: ABORT, data: null });
  }

  /** Immediate teardown (server shutdown). */
  kill(): void {
    this.inbound.clear();
    this.outbound.clear();
    this.socket.destroy();
  }

  private readonly fireOutbound = (): void => {
    this.outbound.timer = null;
    const items = this.outbound.takeDue(performance.now());
    const socket = this.socket;
    socket.cork();
    for (const item of items) {
      if (item.kind === DATA) socket.write(item.data as Buffer | string);
      else if (item.kind === END) socket.destroySoon();
      else {
        socket.uncork();
        socket.destroy();
        return;
      }
    }
    socket.uncork();
    if (!this.outbound.empty) this.arm(this.outbound, this.fireOutbound);
  };

  private arm(lane: Lane, fire: () => void): void {
    if (lane.timer || lane.empty) return;
    const wait = lane.nextAt - performance.now();
    lane.timer = setTimeout(fire, Math.max(wait, 0));
  }
}

/**
 * A Duplex over a Link, so a TLSSocket can run on top of the simulated path: the TLS handshake then
 * costs real (simulated) round trips, as it does on a network.
 */
export class LinkStream extends Duplex {
  constructor(private readonly link: Link) {
    super({ allowHalfOpen: true });
    link.attach(
      (chunk) => {
        this.push(chunk);
      },
      () => {
        this.push(null);
      },
    );
  }

  override _read(): void {
    // Push-based: the link delivers as data arrives.
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.link.write(chunk);
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.link.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.link.abort();
    callback(error);
  }
}

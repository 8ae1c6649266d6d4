import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import { type Config, resolveConfig, STARTUP_ONLY } from './config.js';
import { MockServerError } from './errors.js';
import { FaultEngine } from './faults.js';
import { MemoryInbox } from './inbox.js';
import { TransactionJournal } from './journal.js';
import { Link, type NetParams } from './network.js';
import { Session, type SessionHost } from './session.js';
import { defaultCertificate, secureContext, type TlsMaterial } from './tls.js';
import type { ConnectionStats, FaultRule, MockServer, MockServerOptions, ProtocolViolation, ReceivedMessage, ServerStats, TransactionRecord } from './types.js';

/**
 * Start a mock SMTP server and resolve once it listens. The self-signed certificate is made on the
 * first start in a process and reused after.
 */
export async function startMockServer(options: MockServerOptions = {}): Promise<MockServer> {
  const material = options.tls ?? (await defaultCertificate());
  const server = new MockSmtpServer(options, material);
  await server.listen();
  return server;
}

class MockSmtpServer implements MockServer, SessionHost {
  cfg: Config;
  readonly faults: FaultEngine;
  readonly tlsContext: SecureContext;
  readonly inbox: MemoryInbox;
  readonly journal = new TransactionJournal();
  /** Shared with every Link, updated in place. */
  private readonly net: NetParams;
  private options: MockServerOptions;
  private readonly initial: MockServerOptions;
  private readonly server: Server;
  private readonly sessions = new Set<Session>();
  private connectionStats: ConnectionStats[] = [];
  private connectionSeq = 0;
  private transactionSeq = 0;
  /** Sessions counted against maxConnections (the refused ones are not). */
  private admitted = 0;
  /** Most sessions admitted at once, and those refused by maxConnections, since start/clear(). */
  private peak = 0;
  private refused = 0;
  /** Per-account connection cap: account -> sessions that sent MAIL as it. */
  private readonly accounts = new Map<string, Set<Session>>();
  private readonly idPrefix = randomBytes(2).toString('hex').toUpperCase();
  private idSeq = 0;
  private tokens = 0;
  private tokensAt = 0;
  private closing: Promise<void> | null = null;
  private boundPort = 0;

  constructor(
    options: MockServerOptions,
    private readonly material: TlsMaterial,
  ) {
    this.initial = { ...options, extensions: { ...options.extensions } };
    this.options = { ...this.initial };
    this.cfg = resolveConfig(this.options);
    this.net = { rtt: this.cfg.rtt, bandwidth: this.cfg.bandwidth };
    this.faults = new FaultEngine(options.faults ?? [], this.cfg.seed);
    this.inbox = new MemoryInbox(() => this.cfg.inboxLimit);
    this.tlsContext = secureContext(material);
    // allowHalfOpen: when the client half-closes, replies still in simulated flight must arrive.
    this.server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: this.options.host ?? '127.0.0.1', port: this.options.port ?? 0 }, () => {
        this.server.off('error', reject);
        const address = this.server.address();
        this.boundPort = typeof address === 'object' && address ? address.port : 0;
        resolve();
      });
    });
  }

  // ---------------------------------------------------------------- MockServer

  get host(): string {
    return this.options.host ?? '127.0.0.1';
  }

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `${this.cfg.secure ? 'smtps' : 'smtp'}://${host}:${this.port}`;
  }

  get ca(): string {
    return this.material.cert;
  }

  get connections(): ConnectionStats[] {
    return this.connectionStats;
  }

  get openConnections(): number {
    return this.sessions.size;
  }

  get stats(): ServerStats {
    return { peakConnections: this.peak, refusedConnections: this.refused };
  }

  get transactions(): TransactionRecord[] {
    return this.journal.transactions;
  }

  get violations(): ProtocolViolation[] {
    return this.journal.violations;
  }

  setFaults(faults: FaultRule[]): void {
    this.faults.set(faults);
  }

  configure(options: Partial<MockServerOptions>): void {
    for (const key of STARTUP_ONLY) {
      if (key in options && options[key] !== this.options[key]) {
        throw new MockServerError('EMOCKOPTIONS', `mock-server option ${key} cannot be changed after start`);
      }
    }
    const next: MockServerOptions = {
      ...this.options,
      ...options,
      extensions: { ...this.options.extensions, ...options.extensions },
    };
    this.cfg = resolveConfig(next); // validates before anything changes
    this.options = next;
    this.net.rtt = this.cfg.rtt;
    this.net.bandwidth = this.cfg.bandwidth;
    if (options.faults) this.faults.set(options.faults);
    if (options.seed !== undefined) this.faults.reset(this.cfg.seed);
  }

  clear(): void {
    this.inbox.clear();
    this.connectionStats = [];
    this.connectionSeq = 0;
    this.transactionSeq = 0;
    this.faults.reset(this.cfg.seed);
    this.tokens = 0;
    this.tokensAt = 0;
    // The peak restarts from what is open now.
    this.peak = this.admitted;
    this.refused = 0;
    this.journal.clear();
  }

  reset(): void {
    this.options = { ...this.initial, extensions: { ...this.initial.extensions } };
    this.cfg = resolveConfig(this.options);
    this.net.rtt = this.cfg.rtt;
    this.net.bandwidth = this.cfg.bandwidth;
    this.faults.set(this.initial.faults ?? []);
    this.clear();
  }

  close(): Promise<void> {
    if (!this.closing) {
      this.closing = new Promise((resolve) => {
        this.server.close(() => resolve());
        for (const session of this.sessions) session.kill();
        this.inbox.abort();
      });
    }
    return this.closing;
  }

  // ---------------------------------------------------------------- SessionHost

  nextTransaction(): number {
    return ++this.transactionSeq;
  }

  /** Token bucket: `rateLimit` per second, bursts up to `rateLimit`. */
  takeRateToken(): boolean {
    const rate = this.cfg.rateLimit;
    const now = performance.now();
    if (this.tokensAt === 0) this.tokens = rate;
    else this.tokens = Math.min(rate, this.tokens + ((now - this.tokensAt) * rate) / 1000);
    this.tokensAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  claimAccount(session: Session, account: string): boolean {
    let set = this.accounts.get(account);
    if (!set) {
      set = new Set();
      this.accounts.set(account, set);
    }
    if (set.has(session)) return true;
    if (set.size >= this.cfg.maxConnectionsPerUser) return false;
    set.add(session);
    return true;
  }

  /** Postfix-like queue id: 10 uppercase hex digits, unique per server. */
  queueId(): string {
    return this.idPrefix + (++this.idSeq).toString(16).toUpperCase().padStart(6, '0');
  }

  deliver(message: ReceivedMessage): void {
    this.inbox.add(message);
    const hook = this.cfg.onMessage;
    if (hook) {
      try {
        hook(message);
      } catch (error) {
        // Not the connection's fault: surface it without breaking the session.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  sessionClosed(session: Session): void {
    if (!this.sessions.delete(session)) return;
    if (!session.overCapacity) this.admitted--;
    for (const [account, set] of this.accounts) {
      if (set.delete(session) && set.size === 0) this.accounts.delete(account);
    }
  }

  // ---------------------------------------------------------------- connections

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const cfg = this.cfg;
    const stats: ConnectionStats = {
      id: ++this.connectionSeq,
      reads: 0,
      writes: 0,
      commands: 0,
      replies: 0,
      byCommand: {},
      transactions: 0,
      secure: cfg.secure,
      tlsResumed: false,
      closed: false,
    };
    this.connectionStats.push(stats);
    const overCapacity = this.admitted >= cfg.maxConnections;
    if (overCapacity) this.refused++;
    else if (++this.admitted > this.peak) this.peak = this.admitted;
    const session = new Session(this, new Link(socket, this.net), stats, overCapacity);
    this.sessions.add(session);
    // Connecting costs one round trip before the greeting leaves; with the greeting's own trip the
    // client sees it 1.5 rtt after connecting.
    if (this.net.rtt > 0) session.startAfter(this.net.rtt);
    else session.start();
  }
}

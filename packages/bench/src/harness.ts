/** Runs senders against a mock server in a separate process and collects their results. */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { MockServerOptions } from '@sluice/mock-server';
import type { ClientConfig, ClientResult, SenderName } from './client-process.js';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

export interface ServerHandle {
  host: string;
  port: number;
  /** The certificate the mock server presents (for STARTTLS scenarios). */
  ca: string;
  child: ChildProcess;
  /** What the server received since the last clear(), and the CPU it spent on it. */
  count(): Promise<{ count: number; connections: number; cpuSeconds: number }>;
  clear(): Promise<void>;
  close(): Promise<void>;
}

export async function startServerProcess(options: MockServerOptions): Promise<ServerHandle> {
  const execArgv = process.env.BENCH_SERVER_ARGS ? process.env.BENCH_SERVER_ARGS.split(' ') : [];
  const child = fork(here('./server-process.js'), [JSON.stringify(options)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  const [ready] = (await once(child, 'message')) as [{ host: string; port: number; ca: string }];
  const ask = async <T>(type: string, answer: string): Promise<T> => {
    child.send({ type });
    for (;;) {
      const [msg] = (await once(child, 'message')) as [{ type: string } & T];
      if (msg.type === answer) return msg;
    }
  };
  return {
    host: ready.host,
    port: ready.port,
    ca: ready.ca,
    child,
    count: () => ask('count', 'count'),
    clear: () => ask('clear', 'cleared'),
    close: async () => {
      child.send({ type: 'close' });
      await once(child, 'exit');
    },
  };
}

export async function runClient(config: ClientConfig, onProgress?: (done: number) => void): Promise<ClientResult> {
  // BENCH_CLIENT_ARGS="--cpu-prof --cpu-prof-dir=prof" profiles the senders (flame graphs in Chrome DevTools).
  const execArgv = process.env.BENCH_CLIENT_ARGS ? process.env.BENCH_CLIENT_ARGS.split(' ') : [];
  const child = fork(here('./client-process.js'), [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  return new Promise<ClientResult>((resolve, reject) => {
    let result: ClientResult | null = null;
    child.on('message', (msg: { type: string; done?: number; result?: ClientResult }) => {
      if (msg.type === 'progress' && onProgress) onProgress(msg.done!);
      if (msg.type === 'result') result = msg.result!;
    });
    child.on('exit', (code) => (result ? resolve(result) : reject(new Error(`${config.sender} exited with code ${code}`))));
  });
}

export interface Scenario {
  name: string;
  rtt: number;
  connections: number;
  perConnection: number;
  messages: number;
  size: number;
  recipients: number;
  pipelining: boolean;
  chunking: boolean;
  window: number;
  senders: SenderName[];
  generator?: boolean;
  /** Rounds of the senders in turn (default 1); each sender's median run is reported (bench.ts rounds()). */
  repeat?: number;
  /** The server: the mock server in its own process (default), or a private Postfix behind the delay proxy. */
  server?: 'mock' | 'postfix';
  /** The mock server offers STARTTLS and sluice requires it, trusting the server's certificate. */
  tls?: boolean;
}

/** Round trips per message on a warm connection, for what the server offers and the sender does. */
export function roundTripsPerMessage(sender: SenderName, s: Scenario): number {
  const k = s.recipients;
  const lockstep = 3 + k;
  if (!s.pipelining || sender === 'sluice-lockstep' || sender === 'smtp-source') return lockstep;
  if (sender === 'nodemailer-pool') return 2;
  if (sender === 'nodemailer-naive') return 2;
  return 1;
}

/**
 * The time the network alone needs: per connection, setup (TCP + greeting ≈ 1.5 RTT, EHLO 1 RTT) plus
 * its messages at the best round trips per message the server allows (one with PIPELINING, 3 + k in
 * lock-step), for ceil(messages / (connections × perConnection)) waves of connections.
 */
export function floorSeconds(s: Scenario): number {
  const perMessage = s.pipelining ? 1 : 3 + s.recipients;
  const perConnection = Math.min(s.perConnection, Math.ceil(s.messages / s.connections));
  const waves = Math.ceil(s.messages / (s.connections * perConnection));
  return (waves * (2.5 + perConnection * perMessage) * s.rtt) / 1000;
}

export function serverOptions(s: Scenario): MockServerOptions {
  return { rtt: s.rtt, record: false, extensions: { starttls: s.tls ?? false, pipelining: s.pipelining, chunking: s.chunking } };
}

export function clientConfig(s: Scenario, sender: SenderName, server: { host: string; port: number; ca?: string }, progress: boolean): ClientConfig {
  return {
    sender,
    host: server.host,
    port: server.port,
    ca: s.tls ? server.ca : undefined,
    messages: s.messages,
    size: s.size,
    recipients: s.recipients,
    connections: s.connections,
    perConnection: s.perConnection,
    window: s.window,
    generator: s.generator ?? false,
    progress,
  };
}

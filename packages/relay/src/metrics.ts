/**
 * The relay's metrics, in a prom-client registry: its own counters and gauges (the queue, held
 * messages), and each upstream pool's delivery latency, replies by code, outcomes and connections
 * from @sluice/prometheus (prefix `sluice_relay_pool_<upstream>_`).
 */
import type { Pool } from '@sluice/core';
import { type PrometheusMetrics, prometheusMetrics } from '@sluice/prometheus';
import { Counter, Gauge, Registry } from 'prom-client';

const COUNTERS: Record<string, string> = {
  accepted: 'Messages accepted from local clients (durably spooled, 250 sent)',
  delivered: 'Messages delivered upstream (every recipient done)',
  delivered_recipients: 'Recipients accepted by the upstream',
  deferred: 'Delivery attempts that failed transiently (the message stays queued)',
  bounced: 'Bounces (RFC 3464 DSNs) generated for permanent failures',
  delay_warned: 'Delay warnings (RFC 3464 DSNs, Action: delayed) sent to senders',
  failovers: 'Attempts that went on to the next upstream after one failed before DATA',
  dead_lettered: 'Messages (or recipients of a message) moved to dead/',
  expired: 'Messages given up after the maximum queue lifetime',
  held: 'Messages held because their outcome upstream is unknown',
  released: 'Held messages released back into the queue',
  refused_size: 'Messages refused as too large (552)',
  refused_line_length: 'Messages refused for a line over 998 octets (554 5.6.0)',
  refused_unauthenticated: 'Relay attempts refused for lack of AUTH (530)',
  sessions_limited: 'Client connections refused (too many from one address) or closed (session or command time limit) with 421',
};

/** What the gauges read at each scrape. */
export interface GaugeSource {
  depth(): number;
  inFlight(): number;
  oldestAge(): number;
  connections(): number;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly counters = new Map<string, Counter>();
  private readonly values = new Map<string, number>(Object.keys(COUNTERS).map((k) => [k, 0]));
  private held = 0;
  private source: GaugeSource | null = null;
  private readonly pools: PrometheusMetrics[] = [];
  private accepted: number[] = [];
  private delivered: number[] = [];

  constructor() {
    const registers = [this.registry];
    for (const [name, help] of Object.entries(COUNTERS)) {
      this.counters.set(name, new Counter({ name: `sluice_relay_messages_${name}_total`, help, registers }));
    }
    // Gauges are read at scrape time, from the queue and the pools the relay attached.
    const gauge = (name: string, help: string, read: (s: GaugeSource) => number) => {
      const g: Gauge = new Gauge({
        name,
        help,
        registers,
        collect: () => {
          if (this.source) g.set(read(this.source));
        },
      });
    };
    gauge('sluice_relay_queue_depth', 'Messages in the queue (waiting, deferred or in flight)', (s) => s.depth());
    gauge('sluice_relay_queue_in_flight', 'Messages handed to the upstream pool', (s) => s.inFlight());
    gauge('sluice_relay_queue_oldest_age_seconds', 'Age of the oldest queued message', (s) => Math.round(s.oldestAge() * 1000) / 1000);
    gauge('sluice_relay_upstream_connections', 'Open connections to the upstreams', (s) => s.connections());
    const held: Gauge = new Gauge({
      name: 'sluice_relay_held_messages',
      help: 'Messages in held/ (unknown outcome, waiting for the operator)',
      registers,
      collect: () => held.set(this.held),
    });
  }

  /** The queue and the pools the gauges read, and each upstream pool's own metrics. */
  attach(source: GaugeSource, pools: Array<{ name: string; pool: Pool }>): void {
    this.source = source;
    for (const { name, pool } of pools) {
      this.pools.push(prometheusMetrics(pool, { registry: this.registry, prefix: `sluice_relay_pool_${name.replace(/[^A-Za-z0-9_]/g, '_')}_` }));
    }
  }

  inc(name: string, by = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + by);
    this.counters.get(name)?.inc(by);
  }

  setHeldGauge(n: number): void {
    this.held = n;
  }

  observeAccepted(): void {
    this.accepted.push(Date.now());
    if (this.accepted.length > 100_000) this.trim(this.accepted);
  }

  observeDelivered(): void {
    this.delivered.push(Date.now());
    if (this.delivered.length > 100_000) this.trim(this.delivered);
  }

  private trim(list: number[]): void {
    const cutoff = Date.now() - 60_000;
    let i = 0;
    while (i < list.length && list[i] < cutoff) i++;
    list.splice(0, i);
  }

  /** Messages per minute over the last minute. */
  rates(): { acceptedPerMinute: number; deliveredPerMinute: number } {
    this.trim(this.accepted);
    this.trim(this.delivered);
    return { acceptedPerMinute: this.accepted.length, deliveredPerMinute: this.delivered.length };
  }

  counterValues(): Record<string, number> {
    return Object.fromEntries(this.values);
  }

  /** The Prometheus text (prom-client's exposition format); serve it as `contentType`. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  dispose(): void {
    for (const p of this.pools.splice(0)) p.dispose();
  }
}

/** Counters and gauges, rendered in the Prometheus text format (version 0.0.4). */

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

export class Metrics {
  private values = new Map<string, number>(Object.keys(COUNTERS).map((k) => [k, 0]));
  private held = 0;
  private accepted: number[] = [];
  private delivered: number[] = [];

  inc(name: string, by = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + by);
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

  counters(): Record<string, number> {
    return Object.fromEntries(this.values);
  }

  render(gauges: { depth: number; inFlight: number; oldestAge: number; poolConnections: number }): string {
    const out: string[] = [];
    for (const [name, help] of Object.entries(COUNTERS)) {
      const metric = `sluice_relay_messages_${name}_total`;
      out.push(`# HELP ${metric} ${help}`, `# TYPE ${metric} counter`, `${metric} ${this.values.get(name) ?? 0}`);
    }
    const gauge = (name: string, help: string, value: number) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${value}`);
    gauge('sluice_relay_queue_depth', 'Messages in the queue (waiting, deferred or in flight)', gauges.depth);
    gauge('sluice_relay_queue_in_flight', 'Messages handed to the upstream pool', gauges.inFlight);
    gauge('sluice_relay_queue_oldest_age_seconds', 'Age of the oldest queued message', Math.round(gauges.oldestAge * 1000) / 1000);
    gauge('sluice_relay_held_messages', 'Messages in held/ (unknown outcome, waiting for the operator)', this.held);
    gauge('sluice_relay_upstream_connections', 'Open connections to the upstream', gauges.poolConnections);
    return `${out.join('\n')}\n`;
  }
}

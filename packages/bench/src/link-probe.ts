/**
 * What a round trip costs on the mock server's simulated link, measured rather than assumed: the link
 * delays each direction with timers, which fire a fraction of a millisecond late per hop, and later
 * when the machine is loaded. The round-trip floor is computed at the nominal RTT; this says how far
 * the link itself is from it, so that a sender's "% of the floor" can be read against what any client
 * could do. `sessions` raw sockets at once (as many as the scenario's connections), each greeted,
 * EHLO, then `noops` NOOPs in lock-step, one round trip each.
 */
import { once } from 'node:events';
import net from 'node:net';

export interface LinkProbe {
  /** Mean time of one NOOP round trip, ms. */
  roundTrip: number;
  /**
   * Mean time from connecting to the greeting, ms (nominally 1.5 RTT; more, as the probe is the first
   * client of a fresh server process: it also warms the server up before the first sender runs).
   */
  greeting: number;
}

/** One session: the times it measured. Replies are read whole (the last line has a space after the code). */
async function session(host: string, port: number, noops: number): Promise<{ greeting: number; roundTrips: number[] }> {
  const socket = net.connect(port, host);
  let buffer = '';
  let waiting: (() => void) | null = null;
  let failed: ((err: Error) => void) | null = null;
  socket.setEncoding('utf8');
  socket.on('error', (err) => failed?.(err));
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    if (waiting && /(^|\n)\d{3} [^\n]*\r\n$/.test(buffer)) {
      buffer = '';
      const done = waiting;
      waiting = null;
      done();
    }
  });
  const reply = (line: string | null) =>
    new Promise<void>((resolve, reject) => {
      waiting = resolve;
      failed = reject;
      if (line) socket.write(line);
    });
  try {
    const t0 = performance.now();
    await reply(null);
    const greeting = performance.now() - t0;
    await reply('EHLO probe.sluice.test\r\n');
    const roundTrips: number[] = [];
    for (let i = 0; i < noops; i++) {
      const t = performance.now();
      await reply('NOOP\r\n');
      roundTrips.push(performance.now() - t);
    }
    return { greeting, roundTrips };
  } finally {
    failed = null;
    if (!socket.destroyed) {
      socket.end('QUIT\r\n');
      await once(socket, 'close');
    }
  }
}

export async function probeLink(host: string, port: number, sessions: number, noops = 20): Promise<LinkProbe> {
  const all = await Promise.all(Array.from({ length: sessions }, () => session(host, port, noops)));
  const roundTrips = all.flatMap((s) => s.roundTrips);
  return {
    roundTrip: roundTrips.reduce((a, b) => a + b, 0) / roundTrips.length,
    greeting: all.reduce((a, s) => a + s.greeting, 0) / all.length,
  };
}

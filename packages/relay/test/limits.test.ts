/**
 * Connection rules of the SMTP listener, with real sockets: the greeting goes out at once, slow
 * clients are cut (slowloris), one address cannot take every slot, a session has a deadline.
 * Clients on 127.0.0.2 stand for an attacker beside legitimate clients on 127.0.0.1 (Linux routes
 * all of 127.0.0.0/8 to the loopback interface); the tests of the per-address cap trust 127.0.0.1/32
 * only, since trusted networks are exempt from it (as Postfix exempts $mynetworks).
 */
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { relayArgs, spawnRelay } from './cli-helpers.js';
import { legacySender, onCleanup, relayTo, selfSigned, tmpDir, upstream, waitUntil } from './helpers.js';

interface Client {
  socket: net.Socket;
  /** Complete replies, multi-line ones joined with \n. */
  replies: string[];
  closed: Promise<void>;
  isClosed(): boolean;
}

function connect(port: number, localAddress = '127.0.0.1'): Promise<Client> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  onCleanup(() => socket.destroy());
  const replies: string[] = [];
  let buf = '';
  let lines: string[] = [];
  let closed = false;
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    buf += chunk;
    for (let nl = buf.indexOf('\r\n'); nl !== -1; nl = buf.indexOf('\r\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 2);
      lines.push(line);
      if (/^\d{3} /.test(line) || /^\d{3}$/.test(line)) {
        replies.push(lines.join('\n'));
        lines = [];
      }
    }
  });
  socket.on('error', () => {});
  const done = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  void done.then(() => (closed = true));
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve({ socket, replies, closed: done, isClosed: () => closed }));
    socket.once('error', reject);
  });
}

/** Writes one byte of `text` every `everyMs` until the socket closes (or `text` runs out). */
function dribble(c: Client, text: string, everyMs: number): void {
  let i = 0;
  const t = setInterval(() => {
    if (c.isClosed() || i >= text.length) return clearInterval(t);
    c.socket.write(text[i++]);
  }, everyMs);
  onCleanup(() => clearInterval(t));
}

const code = (reply: string | undefined) => Number(reply?.slice(0, 3));

describe('connection rules', () => {
  it('greets at once: a client that talks before the greeting is served, not told "421 You talk too soon"', async () => {
    const server = await upstream();
    const { relay } = await relayTo(server);
    // smtp-server's own 100 ms pause before the greeting refuses anything sent during it.
    const c = await connect(relay.port);
    c.socket.write('EHLO early.example.com\r\nNOOP\r\n');
    await waitUntil(() => c.replies.length >= 3 || c.isClosed(), 5000, 'greeting, EHLO and NOOP replies');
    expect(c.replies.map(code)).toEqual([220, 250, 250]);
    expect(c.replies[1]).toMatch(/^250-relay\.test/);
    c.socket.end('QUIT\r\n');
  });

  it('cuts a client that sends a command one byte at a time (slowloris), and lets the others through meanwhile', async () => {
    const server = await upstream();
    const { relay, log } = await relayTo(server, { commandTimeout: 1500, maxClients: 10, maxClientsPerAddress: 3, trustedNetworks: ['127.0.0.1/32'] });
    const slow = await Promise.all([1, 2, 3].map(() => connect(relay.port, '127.0.0.2')));
    await waitUntil(() => slow.every((c) => c.replies.length === 1), 5000, 'greetings');
    for (const c of slow) dribble(c, 'EHLO slow-client-that-never-finishes.example.com', 100);
    // A fourth connection from the same address is refused before the greeting.
    const extra = await connect(relay.port, '127.0.0.2');
    await extra.closed;
    expect(extra.replies).toHaveLength(1);
    expect(code(extra.replies[0])).toBe(421);
    expect(extra.replies[0]).toMatch(/Too many connections from your address/);
    // Everyone else is served while the slow ones hang on.
    const info = await legacySender(relay.port).sendMail({ from: 'a@example.com', to: 'b@example.com', subject: 'served', text: 'x' });
    expect(info.response).toMatch(/^250 /);
    expect(slow.some((c) => c.isClosed())).toBe(false);
    // The slow ones get 421 and are closed, although they never stopped sending.
    await Promise.all(slow.map((c) => c.closed));
    for (const c of slow) {
      expect(c.replies.map(code)).toEqual([220, 421]);
      expect(c.replies[1]).toMatch(/Command timeout/);
    }
    expect(await relay.metrics()).toMatch(/^sluice_relay_messages_sessions_limited_total 4$/m);
    expect(log.records().filter((r) => r.rule === 'command')).toHaveLength(3);
    // Their slots are free again once the relay has seen the sockets close.
    await waitUntil(
      async () => {
        const again = await connect(relay.port, '127.0.0.2');
        await waitUntil(() => again.replies.length === 1, 5000, 'first reply');
        again.socket.destroy();
        return code(again.replies[0]) === 220;
      },
      5000,
      'a greeting for 127.0.0.2 again',
    );
  }, 20_000);

  it('without the per-address cap, slow clients from one address would fill every slot: the cap keeps slots for others', async () => {
    const server = await upstream();
    const { relay } = await relayTo(server, { maxClients: 4, maxClientsPerAddress: 2, trustedNetworks: ['127.0.0.1/32'] });
    const attacker = await Promise.all([1, 2, 3, 4].map(() => connect(relay.port, '127.0.0.2')));
    await waitUntil(() => attacker.every((c) => c.replies.length === 1), 5000, 'first replies');
    expect(attacker.map((c) => code(c.replies[0])).sort()).toEqual([220, 220, 421, 421]);
    const other = await connect(relay.port, '127.0.0.1');
    await waitUntil(() => other.replies.length === 1, 5000, 'greeting');
    expect(code(other.replies[0])).toBe(220);
  });

  it('ends a session at its deadline even when the client keeps sending complete commands', async () => {
    const server = await upstream();
    const { relay } = await relayTo(server, { sessionTimeout: 800 });
    const c = await connect(relay.port);
    const started = Date.now();
    const t = setInterval(() => c.isClosed() || c.socket.write('NOOP\r\n'), 100);
    onCleanup(() => clearInterval(t));
    await c.closed;
    clearInterval(t);
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);
    const last = c.replies[c.replies.length - 1];
    expect(code(last)).toBe(421);
    expect(last).toMatch(/Session time limit exceeded/);
    expect(c.replies.slice(1, -1).every((r) => code(r) === 250)).toBe(true);
    expect(c.replies.length).toBeGreaterThan(3);
  });
});

describe('connection rules from the command line', () => {
  it('exempts the trusted networks from the per-address cap, as Postfix exempts $mynetworks (a burst of local programs)', async () => {
    const server = await upstream();
    const { relay } = await relayTo(server, { maxClients: 10, maxClientsPerAddress: 2 });
    const local = await Promise.all([1, 2, 3, 4].map(() => connect(relay.port, '127.0.0.1')));
    await waitUntil(() => local.every((c) => c.replies.length > 0), 5000, 'four greetings');
    expect(local.map((c) => code(c.replies[0]))).toEqual([220, 220, 220, 220]);
  });

  it('--max-clients-per-address, --session-timeout and --command-timeout reach the listener', async () => {
    const server = await upstream();
    const relay = await spawnRelay(
      relayArgs(server.port, await tmpDir(), '--max-clients-per-address', '1', '--trusted-networks', '127.0.0.1/32', '--session-timeout', '700ms', '--command-timeout', '5s'),
    );
    const first = await connect(relay.port, '127.0.0.2');
    await waitUntil(() => first.replies.length === 1, 5000, 'greeting');
    const second = await connect(relay.port, '127.0.0.2');
    await second.closed;
    expect(second.replies.map(code)).toEqual([421]);
    await first.closed;
    expect(first.replies.map(code)).toEqual([220, 421]);
    expect(first.replies[1]).toMatch(/Session time limit exceeded/);
    await relay.waitForLog((r) => r.rule === 'session');
    relay.child.kill('SIGTERM');
    expect(await relay.exited).toBe(0);
  });
});

describe('connection rules after STARTTLS', () => {
  it('cuts a slow client on the TLS socket too', async () => {
    const server = await upstream();
    const cert = await selfSigned();
    const { relay } = await relayTo(server, { commandTimeout: 800, tls: { key: cert.key, cert: cert.cert }, users: { app: 'local-Secret-1' } });
    const c = await connect(relay.port);
    c.socket.write('EHLO slow.example.com\r\nSTARTTLS\r\n');
    await waitUntil(() => c.replies.length === 3, 5000, 'greeting, EHLO, STARTTLS');
    expect(c.replies.map(code)).toEqual([220, 250, 220]);
    c.socket.removeAllListeners('data');
    const secure = tls.connect({ socket: c.socket, ca: cert.cert, servername: 'localhost' });
    onCleanup(() => secure.destroy());
    let text = '';
    secure.setEncoding('latin1');
    secure.on('data', (d: string) => (text += d));
    secure.on('error', () => {});
    await once(secure, 'secureConnect');
    const closed = once(secure, 'close');
    let i = 0;
    const line = 'EHLO slow-over-tls.example.com';
    const t = setInterval(() => i < line.length && !secure.destroyed && secure.write(line[i++]), 100);
    onCleanup(() => clearInterval(t));
    await closed;
    clearInterval(t);
    expect(text).toMatch(/^421 .*Command timeout/m);
  });
});

import { randomBytes } from 'node:crypto';
import { type PeerCertificate, checkServerIdentity as checkIdentity } from 'node:tls';
import type { MockServer, MockServerOptions } from '@sluice/mock-server';
import { generate } from 'selfsigned';
import { afterEach, describe, expect, it } from 'vitest';
import { type ConnectMessage, type Pool, type PoolOptions, type SluiceError, subscribeDiagnostics } from '../src/index.js';
import { message, pool, server } from './helpers.js';

/**
 * TLS session resumption (the `tlsResumption` option): a connection that retires after
 * maxMessagesPerConnection is followed by one that resumes its session, seen from both ends (the
 * pool's 'connect' event, stats and diagnostics channel; the server's own TLSSocket.isSessionReused()).
 */

const unsubscribes: Array<() => void> = [];
afterEach(() => {
  for (const u of unsubscribes.splice(0)) u();
});

type Mode = { name: string; server: { secure?: boolean; extensions?: { starttls: boolean } }; pool: Partial<PoolOptions> };
const MODES: Mode[] = [
  { name: 'STARTTLS', server: { extensions: { starttls: true } }, pool: { requireTLS: true } },
  { name: 'implicit TLS', server: { secure: true }, pool: { secure: true } },
];
const VERSIONS = ['TLSv1.3', 'TLSv1.2'] as const;

/** One message per connection, one connection at a time: each send opens a new connection after the last one retired. */
function oneByOne(s: MockServer, mode: Mode, version: (typeof VERSIONS)[number], options: Partial<PoolOptions> = {}): Pool {
  return pool(s, { ...mode.pool, maxConnections: 1, maxMessagesPerConnection: 1, tls: { ca: s.ca, minVersion: version, maxVersion: version }, ...options });
}

/** The tlsResumed flag of every 'connect' event of `p`. */
function connects(p: Pool): boolean[] {
  const seen: boolean[] = [];
  p.on('connect', (info) => seen.push(info.tlsResumed));
  return seen;
}

async function sendEach(p: Pool, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await p.send(message(i));
}

/** A self-signed certificate for localhost and 127.0.0.1 (each call a new key). */
async function certificate(): Promise<{ key: string; cert: string }> {
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    extensions: [
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
  return { key: pems.private, cert: pems.cert };
}

describe.each(MODES)('TLS session resumption over $name', (mode) => {
  describe.each(VERSIONS)('%s', (version) => {
    it('resumes the session of the connection that retired, seen by both ends', async () => {
      const s = await server(mode.server);
      const p = oneByOne(s, mode, version);
      const seen = connects(p);
      const published: ConnectMessage[] = [];
      unsubscribes.push(subscribeDiagnostics({ connect: (m) => m.pool === p && published.push(m) }));
      await sendEach(p, 3);
      expect(seen).toEqual([false, true, true]);
      expect(s.connections.map((c) => [c.secure, c.tlsResumed])).toEqual([
        [true, false],
        [true, true],
        [true, true],
      ]);
      expect(published.map((m) => [m.encrypted, m.tlsResumed])).toEqual([
        [true, false],
        [true, true],
        [true, true],
      ]);
      expect(p.stats.tlsResumed).toBe(2);
      expect(s.inbox.messages.map((m) => m.secure)).toEqual([true, true, true]);
    });

    it('does not resume with tlsResumption: false', async () => {
      const s = await server(mode.server);
      const p = oneByOne(s, mode, version, { tlsResumption: false });
      const seen = connects(p);
      await sendEach(p, 2);
      expect(seen).toEqual([false, false]);
      expect(s.connections.map((c) => c.tlsResumed)).toEqual([false, false]);
      expect(p.stats.tlsResumed).toBe(0);
    });

    it('does not resume by default beside a checkServerIdentity of the user (Node skips it for a resumed session): it runs for every connection', async () => {
      const s = await server(mode.server);
      const checked: string[] = [];
      const checkServerIdentity = (host: string, cert: PeerCertificate) => {
        checked.push(host);
        return checkIdentity(host, cert);
      };
      const p = oneByOne(s, mode, version, { tls: { ca: s.ca, minVersion: version, maxVersion: version, checkServerIdentity } });
      const seen = connects(p);
      await sendEach(p, 3);
      expect(seen).toEqual([false, false, false]);
      expect(s.connections.map((c) => c.tlsResumed)).toEqual([false, false, false]);
      expect(checked).toHaveLength(3);
    });

    it("never offers one pool's session to another pool (other servername, same CA)", async () => {
      const s = await server(mode.server);
      const first = oneByOne(s, mode, version);
      await sendEach(first, 2);
      // The certificate names both 127.0.0.1 and localhost: each pool verifies it, and neither resumes the other's session.
      const second = oneByOne(s, mode, version, { tls: { ca: s.ca, servername: 'localhost', minVersion: version, maxVersion: version } });
      const seen = connects(second);
      await sendEach(second, 2);
      expect(seen).toEqual([false, true]);
      expect(s.connections.map((c) => c.tlsResumed)).toEqual([false, true, false, true]);
    });

    it('falls back to a full handshake when the server no longer takes the session, then resumes the new one', async () => {
      const mine = await certificate();
      const first = await server({ ...mode.server, tls: { ...mine, ticketKeys: randomBytes(48) } });
      const p = pool(first, { ...mode.pool, maxConnections: 1, maxMessagesPerConnection: 1, tls: { ca: mine.cert, minVersion: version, maxVersion: version } });
      const seen = connects(p);
      await sendEach(p, 1);
      const { port } = first;
      await first.close();
      // Same certificate, other ticket keys (a server restarted, or another node behind the name): the stored ticket is refused.
      const second = await server({ ...mode.server, port, tls: { ...mine, ticketKeys: randomBytes(48) } });
      await sendEach(p, 3);
      expect(seen).toEqual([false, false, true, true]);
      expect(second.connections.map((c) => c.tlsResumed)).toEqual([false, true, true]);
      expect(second.inbox.messages).toHaveLength(3);
    });

    it('still refuses a certificate it cannot verify when it holds a session, and drops the session the refused handshake offered', async () => {
      const [mine, theirs] = await Promise.all([certificate(), certificate()]);
      // The trusted server, started again with the same ticket keys: it resumes the sessions of the one before.
      const ticketKeys = randomBytes(48);
      const trusted = await server({ ...mode.server, tls: { ...mine, ticketKeys } });
      const { port } = trusted;
      const p = pool(trusted, {
        ...mode.pool,
        maxConnections: 1,
        maxMessagesPerConnection: 1,
        retry: false,
        tls: { ca: mine.cert, minVersion: version, maxVersion: version },
      });
      const seen = connects(p);
      const restart = async (previous: MockServer, tls: MockServerOptions['tls']) => {
        await previous.close();
        return server({ ...mode.server, port, tls });
      };
      await sendEach(p, 1);
      const again = await restart(trusted, { ...mine, ticketKeys });
      await sendEach(p, 1); // the control: a restarted server with the same keys resumes
      // Another server on the same host and port, with a certificate the pool's CA did not sign.
      const impostor = await restart(again, theirs);
      for (const i of [2, 3]) {
        const err = (await p.send(message(i)).catch((e) => e)) as SluiceError;
        expect([err.code, err.outcome]).toEqual(['ETLS', 'failed']);
      }
      // The impostor could not resume the trusted server's session, and the second attempt offered
      // nothing learnt from the first, refused, handshake (TLS 1.2 tickets arrive before the check).
      expect(impostor.connections.map((c) => [c.tlsResumed, c.byCommand.MAIL ?? 0])).toEqual([
        [false, 0],
        [false, 0],
      ]);
      expect(impostor.inbox.messages).toHaveLength(0);
      // Back to the trusted server: the refused handshake dropped the session it offered, so a full
      // handshake first, then resumption again.
      const back = await restart(impostor, { ...mine, ticketKeys });
      await sendEach(p, 2);
      expect(seen).toEqual([false, true, false, true]);
      expect([...again.connections, ...back.connections].map((c) => c.tlsResumed)).toEqual([true, false, true]);
    });
  });
});

import os from 'node:os';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import { createPool, createPoolGroup, type Pool, type PoolGroup } from '../src/index.js';
import { addressLiteral, defaultClientName, normaliseClientName } from '../src/protocol/client-name.js';

describe('the EHLO name (RFC 5321 §4.1.1.1, §4.1.3)', () => {
  it.each([
    ['mail.example.com', '10.0.0.5', 'mail.example.com'],
    ['mail.example.com.', '10.0.0.5', 'mail.example.com'],
    ['vm', '10.0.0.5', '[10.0.0.5]'],
    ['localhost', '127.0.0.1', '[127.0.0.1]'],
    ['build-42', '::1', '[IPv6:::1]'],
    ['vm', '::ffff:192.0.2.7', '[192.0.2.7]'],
    ['host.123', '192.0.2.1', '[192.0.2.1]'], // a numeric last label is no domain
    ['bad_label.example', '192.0.2.1', '[192.0.2.1]'],
  ])('host %j on %j says %j by default', (hostname, local, expected) => {
    expect(defaultClientName(hostname, local)).toBe(expected);
  });

  it.each([
    ['192.0.2.1', '[192.0.2.1]'],
    ['2001:db8::1', '[IPv6:2001:db8::1]'],
    ['client.example.com', 'client.example.com'],
    ['[192.0.2.1]', '[192.0.2.1]'],
  ])('a configured name %j is sent as %j', (name, expected) => {
    expect(normaliseClientName(name)).toBe(expected);
    expect(addressLiteral('::ffff:10.1.2.3')).toBe('[10.1.2.3]');
  });
});

describe('the EHLO name on the wire (smtp-server records what the client said)', () => {
  const servers: SMTPServer[] = [];
  let pool: Pool | PoolGroup | null = null;
  afterEach(async () => {
    await pool?.destroy();
    await Promise.all(servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    pool = null;
  });

  /** A real SMTP server that records the name each client gave in EHLO. */
  async function recorder(host: string): Promise<{ port: number; said: string[] }> {
    const said: string[] = [];
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      onMailFrom(_address, session, callback) {
        said.push(session.hostNameAppearsAs);
        callback();
      },
      onData(stream, _session, callback) {
        stream.resume();
        stream.on('end', () => callback());
      },
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    return { port: (server.server.address() as { port: number }).port, said };
  }

  const mail = { envelope: { from: 'a@example.com', to: ['b@example.com'] }, body: 'Subject: x\r\n\r\nx\r\n' };

  async function ehloName(host: string, name?: string): Promise<string> {
    const { port, said } = await recorder(host);
    pool = createPool({ host, port, ...(name === undefined ? {} : { name }) });
    await pool.send(mail);
    return said[0]!;
  }

  it('no name configured: the FQDN of this host, else the literal of the local address', async () => {
    // On a host named "vm" (this project's CI) that is "[127.0.0.1]".
    expect(await ehloName('127.0.0.1')).toBe(defaultClientName(os.hostname(), '127.0.0.1'));
  });

  it('a bare IP as name goes out as an address literal', async () => {
    expect(await ehloName('127.0.0.1', '127.0.0.1')).toBe('[127.0.0.1]');
  });

  it('a configured FQDN goes out as it is', async () => {
    expect(await ehloName('127.0.0.1', 'client.example.com')).toBe('client.example.com');
  });

  it("in a pool group: each upstream's ehloName, else the group's name", async () => {
    const a = await recorder('127.0.0.1');
    const b = await recorder('127.0.0.1');
    const group = createPoolGroup({
      name: 'group.example.com',
      upstreams: [
        { name: 'a', host: '127.0.0.1', port: a.port },
        { name: 'b', host: '127.0.0.1', port: b.port, ehloName: 'b.example.com' },
      ],
    });
    pool = group;
    await group.send(mail, { upstreams: ['a'] });
    await group.send(mail, { upstreams: ['b'] });
    expect([a.said, b.said]).toEqual([['group.example.com'], ['b.example.com']]);
    expect([group.pool('a')!.options.connection.name, group.pool('b')!.options.connection.name]).toEqual(['group.example.com', 'b.example.com']);
  });
});

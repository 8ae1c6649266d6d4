import { describe, expect, it } from 'vitest';
import { RelayConfigError } from '../src/config.js';
import { isTrusted, parseRange, parseRanges } from '../src/trusted.js';
import { legacySender, relayTo, upstream } from './helpers.js';

describe('--trusted-networks (Postfix mynetworks)', () => {
  it('relays without AUTH from a trusted range, and refuses with 530 from another loopback address', async () => {
    const server = await upstream();
    const { relay, log } = await relayTo(server, { trustedNetworks: ['127.0.0.1/32'] });
    const trusted = await legacySender(relay.port, { localAddress: '127.0.0.1' }).sendMail({ from: 'a@example.com', to: 'b@example.com', text: 'x' });
    expect(trusted.response).toMatch(/^250 /);
    const refused = await legacySender(relay.port, { localAddress: '127.0.0.2' })
      .sendMail({ from: 'a@example.com', to: 'c@example.com', text: 'x' })
      .then(
        () => null,
        (err: { responseCode?: number; command?: string }) => err,
      );
    expect(refused?.responseCode).toBe(530);
    expect(refused?.command).toBe('MAIL FROM');
    await relay.idle(5000);
    expect(server.inbox.messages.map((m) => m.to)).toEqual([['b@example.com']]);
    expect(log.records().find((r) => r.msg === 'relay attempt without AUTH refused')).toMatchObject({ client: '127.0.0.2' });
    expect(await relay.metrics()).toMatch(/sluice_relay_messages_refused_unauthenticated_total 1\n/);
  });

  it('parses ranges: IPv4, IPv6, bare addresses, Postfix brackets, IPv4-mapped', () => {
    const table: Array<[range: string, address: string, inside: boolean]> = [
      ['127.0.0.0/8', '127.0.0.2', true],
      ['127.0.0.1/32', '127.0.0.2', false],
      ['127.0.0.1', '127.0.0.1', true],
      ['10.0.0.0/8', '10.255.1.2', true],
      ['10.0.0.0/8', '11.0.0.1', false],
      ['172.17.0.0/16', '172.17.5.9', true],
      ['172.17.0.0/16', '172.18.0.1', false],
      ['192.168.1.128/25', '192.168.1.200', true],
      ['192.168.1.128/25', '192.168.1.100', false],
      ['::1/128', '::1', true],
      ['[::1]/128', '::1', true],
      ['fd00::/8', 'fd12:3456::1', true],
      ['fd00::/8', 'fe80::1', false],
      ['2001:db8::/32', '2001:db8:ffff::1', true],
      ['10.0.0.0/8', '::ffff:10.1.2.3', true], // a dual-stack socket's form of 10.1.2.3
      ['::ffff:10.0.0.0/104', '10.9.9.9', true],
      ['10.0.0.0/8', 'fd00::10', false], // families never match each other
      ['10.0.0.0/8', 'not-an-address', false],
    ];
    for (const [range, address, inside] of table) expect(isTrusted(address, [parseRange(range)]), `${address} in ${range}`).toBe(inside);
    expect(isTrusted(undefined, parseRanges(['127.0.0.0/8']))).toBe(false);
  });

  it('refuses what is not a range, and every-address ranges (an open relay)', () => {
    for (const bad of ['10.0.0.0/33', '300.1.1.1', 'example.com', '10.0.0.0/', 'fd00::/129', '']) {
      expect(() => parseRange(bad), bad).toThrow(RelayConfigError);
    }
    expect(() => parseRange('0.0.0.0/0')).toThrow(/open relay/);
    expect(() => parseRange('::/0')).toThrow(/open relay/);
  });
});

/**
 * Trusted networks (Postfix's `mynetworks`): CIDR ranges whose clients may relay without AUTH.
 * Parsing and matching are ipaddr.js's; an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what a
 * dual-stack socket reports) is matched as the IPv4 address it carries.
 */
import ipaddr from 'ipaddr.js';
import { RelayConfigError } from './config.js';

export type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** Without `--trusted-networks`, loopback only (what the relay always trusted). */
export const DEFAULT_TRUSTED = ['127.0.0.0/8', '::1/128'];

/** `10.0.0.0/8`, `fd00::/8`, or a bare address (a /32 or /128). Refuses what is not a range, and /0 (an open relay). */
export function parseRange(text: string): Range {
  // Postfix writes IPv6 networks in brackets: [::1]/128, [fd00::]/8.
  const t = text.trim().replace(/^\[([^\]]+)\]/, '$1');
  let range: Range;
  try {
    range = t.includes('/')
      ? ipaddr.parseCIDR(t)
      : (() => {
          const a = ipaddr.parse(t);
          return [a, a.kind() === 'ipv4' ? 32 : 128] as Range;
        })();
  } catch {
    throw new RelayConfigError(`trusted network ${JSON.stringify(text)} is not an address or a CIDR range (e.g. 10.0.0.0/8, 172.17.0.0/16, fd00::/8)`);
  }
  const [addr, bits] = range;
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
    range = [(addr as ipaddr.IPv6).toIPv4Address(), bits - 96];
  }
  if (range[1] === 0) {
    throw new RelayConfigError(
      `trusted network ${JSON.stringify(text)} is every address: the relay would be an open relay. Name the networks your senders are on`,
    );
  }
  return range;
}

export function parseRanges(list: string[]): Range[] {
  return list.map(parseRange);
}

/** Whether `address` (as a socket reports it) is inside one of the ranges. */
export function isTrusted(address: string | undefined, ranges: Range[]): boolean {
  if (!address || !ipaddr.isValid(address)) return false;
  const addr = ipaddr.process(address); // ::ffff:a.b.c.d → a.b.c.d
  return ranges.some(([net, bits]) => net.kind() === addr.kind() && addr.match(net, bits));
}

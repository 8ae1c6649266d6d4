import { ipVersion } from '../ip.js';

/**
 * The name a client gives in EHLO/HELO. RFC 5321 §4.1.1.1: "the fully-qualified domain name of the SMTP
 * client if one is available", otherwise an address literal (§4.1.3) — never a bare host name such as
 * "vm", which strict servers refuse (Postfix's reject_non_fqdn_helo_hostname) and spam filters score.
 */

/** A name given by the user: a bare IP address becomes an address literal; anything else is kept. */
export function normaliseClientName(name: string): string {
  return ipVersion(name) ? addressLiteral(name) : name;
}

/**
 * The default name: this host's name when it is fully qualified, otherwise the literal of the local
 * address the connection uses (known only once it is connected).
 */
export function defaultClientName(hostname: string, localAddress: string | undefined): string {
  if (isFqdn(hostname)) return hostname.replace(/\.$/, '');
  return localAddress && ipVersion(localAddress) ? addressLiteral(localAddress) : '[127.0.0.1]';
}

function isFqdn(name: string): boolean {
  const labels = name.replace(/\.$/, '').split('.');
  return labels.length >= 2 && labels.every((label) => /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i.test(label)) && !/^\d+$/.test(labels.at(-1)!);
}

/** RFC 5321 §4.1.3: `[192.0.2.1]`, `[IPv6:2001:db8::1]`; an IPv4-mapped IPv6 address is its IPv4 form. */
export function addressLiteral(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return `[${mapped[1]}]`;
  return ipVersion(address) === 6 ? `[IPv6:${address}]` : `[${address}]`;
}

/**
 * Loopback checks by address, never by spelling: "127.evil.example" starts with "127." and is
 * anyone's host. An address is checked against 127.0.0.0/8 (RFC 1122 §3.2.1.3) and ::1 (RFC 4291
 * §2.5.3), IPv4-mapped forms included; a name is resolved and every address it resolves to must be
 * loopback, since a listener bound to a name may end up on any of them.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

function bare(address: string): string {
  return address.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '');
}

/** True for a loopback IP address (v4, v6 or v4-mapped). A name is never loopback here: resolve it first. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const a = bare(address);
  const family = isIP(a);
  if (family === 0) return false;
  return LOOPBACK.check(a, family === 6 ? 'ipv6' : 'ipv4');
}

export interface LoopbackCheck {
  loopback: boolean;
  /** What the host resolved to (the host itself for an address). */
  addresses: string[];
  /** Why it could not be resolved. */
  error?: string;
}

/** Resolves `host` (every A and AAAA record) and says whether all of its addresses are loopback. */
export async function resolvesToLoopback(host: string): Promise<LoopbackCheck> {
  if (isIP(bare(host))) return { loopback: isLoopbackAddress(host), addresses: [bare(host)] };
  try {
    const found = await lookup(host, { all: true, order: 'verbatim' });
    const addresses = found.map((f) => f.address);
    return { loopback: addresses.length > 0 && addresses.every((a) => isLoopbackAddress(a)), addresses };
  } catch (err) {
    return { loopback: false, addresses: [], error: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
  }
}

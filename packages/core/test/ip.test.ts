import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { ipVersion } from '../src/ip.js';

describe('ipVersion (net.isIP without the IPv6 pattern for names that cannot be one)', () => {
  it.each(['127.0.0.1', '192.0.2.255', '::1', '2001:db8::1', '::ffff:192.0.2.7', 'fe80::1', 'mail.example.com', '1.2.3', '256.1.1.1', '', 'localhost', ':', '1:2'])(
    '%j answers as net.isIP does',
    (text) => {
      expect(ipVersion(text)).toBe(net.isIP(text));
    },
  );
});

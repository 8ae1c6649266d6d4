import { describe, expect, it } from 'vitest';
import { parseCapabilities } from '../../src/protocol/capabilities.js';
import { type Reply, ReplyParser } from '../../src/protocol/reply.js';

/** Parses an EHLO reply as it comes off the wire. */
function ehlo(...lines: string[]): Reply {
  const wire = lines.map((line, i) => `250${i === lines.length - 1 ? ' ' : '-'}${line}\r\n`).join('');
  const replies: Reply[] = [];
  new ReplyParser().feed(Buffer.from(wire), (r) => replies.push(r));
  expect(replies).toHaveLength(1);
  return replies[0]!;
}

/** Every field of Capabilities when nothing is offered (esmtp set by each test). */
const NO_EXTENSIONS = {
  pipelining: false,
  chunking: false,
  binaryMime: false,
  size: null,
  eightBitMime: false,
  smtpUtf8: false,
  dsn: false,
  enhancedStatusCodes: false,
  starttls: false,
  auth: [],
  raw: {},
};

describe('parseCapabilities', () => {
  it('parses a Postfix EHLO reply', () => {
    const caps = parseCapabilities(
      ehlo(
        'mx.example.com',
        'PIPELINING',
        'SIZE 10240000',
        'VRFY',
        'ETRN',
        'STARTTLS',
        'AUTH PLAIN LOGIN',
        'AUTH=PLAIN LOGIN',
        'ENHANCEDSTATUSCODES',
        '8BITMIME',
        'DSN',
        'SMTPUTF8',
        'CHUNKING',
      ),
    );
    expect(caps).toMatchObject({
      esmtp: true,
      pipelining: true,
      chunking: true,
      binaryMime: false,
      size: 10240000,
      eightBitMime: true,
      smtpUtf8: true,
      dsn: true,
      enhancedStatusCodes: true,
      starttls: true,
    });
    // Both the RFC 4954 form and the legacy "AUTH=" form name the same mechanisms.
    expect(new Set(caps.auth)).toEqual(new Set(['PLAIN', 'LOGIN']));
    expect(caps.raw.SIZE).toEqual(['10240000']);
    expect(caps.raw.VRFY).toEqual([]);
    expect(caps.raw.ETRN).toEqual([]);
    expect(Object.keys(caps.raw).sort()).toEqual(
      ['8BITMIME', 'AUTH', 'CHUNKING', 'DSN', 'ENHANCEDSTATUSCODES', 'ETRN', 'PIPELINING', 'SIZE', 'SMTPUTF8', 'STARTTLS', 'VRFY'].sort(),
    );
  });

  it('does not treat the first line (the server name) as a keyword', () => {
    const caps = parseCapabilities(ehlo('PIPELINING', 'SIZE 1000'));
    expect(caps.pipelining).toBe(false);
    expect(caps.size).toBe(1000);
    expect('PIPELINING' in caps.raw).toBe(false);
  });

  it('parses a Microsoft 365 style reply (BINARYMIME, no AUTH)', () => {
    const caps = parseCapabilities(
      ehlo(
        'BN8PR12MB.outlook.office365.com Hello [192.0.2.1]',
        'SIZE 157286400',
        'PIPELINING',
        'DSN',
        'ENHANCEDSTATUSCODES',
        'STARTTLS',
        '8BITMIME',
        'BINARYMIME',
        'CHUNKING',
        'SMTPUTF8',
      ),
    );
    expect(caps).toMatchObject({ size: 157286400, binaryMime: true, chunking: true, auth: [], starttls: true });
  });

  it('parses a Gmail style AUTH line', () => {
    const caps = parseCapabilities(
      ehlo('smtp.gmail.com at your service, [192.0.2.1]', 'SIZE 35882577', 'AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER'),
    );
    expect(caps.auth).toEqual(['LOGIN', 'PLAIN', 'XOAUTH2', 'PLAIN-CLIENTTOKEN', 'OAUTHBEARER']);
  });

  it('parses the legacy "AUTH=" form alone', () => {
    expect(parseCapabilities(ehlo('mx', 'AUTH=LOGIN')).auth).toEqual(['LOGIN']);
    expect(parseCapabilities(ehlo('mx', 'AUTH=PLAIN LOGIN')).auth).toEqual(['PLAIN', 'LOGIN']);
  });

  it('upper-cases keywords and AUTH mechanisms', () => {
    const caps = parseCapabilities(ehlo('mx', 'pipelining', 'auth login cram-md5', 'size 500', 'StartTLS'));
    expect(caps.pipelining).toBe(true);
    expect(caps.starttls).toBe(true);
    expect(caps.size).toBe(500);
    expect(caps.auth).toEqual(['LOGIN', 'CRAM-MD5']);
    expect(Object.keys(caps.raw).sort()).toEqual(['AUTH', 'PIPELINING', 'SIZE', 'STARTTLS']);
  });

  it('tolerates extra whitespace around keywords and parameters', () => {
    const caps = parseCapabilities(ehlo('mx', '  PIPELINING  ', 'SIZE   2048 ', 'AUTH  PLAIN   LOGIN'));
    expect(caps.pipelining).toBe(true);
    expect(caps.size).toBe(2048);
    expect(caps.auth).toEqual(['PLAIN', 'LOGIN']);
  });

  it('SIZE without a number means "no fixed limit" (0)', () => {
    expect(parseCapabilities(ehlo('mx', 'SIZE')).size).toBe(0);
    expect(parseCapabilities(ehlo('mx', 'SIZE 0')).size).toBe(0);
  });

  it('SIZE with a non-numeric parameter is treated as no fixed limit', () => {
    expect(parseCapabilities(ehlo('mx', 'SIZE unlimited')).size).toBe(0);
    expect(parseCapabilities(ehlo('mx', 'SIZE -5')).size).toBe(0);
  });

  it('size is null when SIZE is not offered', () => {
    expect(parseCapabilities(ehlo('mx', 'PIPELINING')).size).toBeNull();
  });

  it('a one-line EHLO reply means ESMTP with no extensions', () => {
    expect(parseCapabilities(ehlo('mx.example.com'))).toEqual({ ...NO_EXTENSIONS, esmtp: true });
  });

  it('HELO (null): no ESMTP, no extensions', () => {
    expect(parseCapabilities(null)).toEqual({ ...NO_EXTENSIONS, esmtp: false });
  });

  it('skips empty continuation lines', () => {
    const caps = parseCapabilities(ehlo('mx', '', 'PIPELINING'));
    expect(caps.pipelining).toBe(true);
    expect(Object.keys(caps.raw)).toEqual(['PIPELINING']);
  });
});

/**
 * What the spool writes, byte for byte: the types of a spooled message, its id, the one-file header
 * (queue/, held/, dead/) and the segment record (segments/). Pure functions, no I/O.
 */
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

export const MAGIC = 'SLUICE-SPOOL/1';
export const RECORD_MAGIC = 'SLUICE-SEG/1';

export interface SpoolDsn {
  ret?: 'FULL' | 'HDRS';
  envid?: string;
  /** Per recipient: NOTIFY values (NEVER or SUCCESS/FAILURE/DELAY) */
  notify?: Record<string, string[]>;
  orcpt?: Record<string, string>;
}

export interface SpoolHeader {
  v: 1;
  id: string;
  /** Reverse path; '' is the null sender (a bounce). */
  from: string;
  to: string[];
  /** ms since epoch, when the 250 was about to be sent (the start of the maximum age). */
  receivedAt: number;
  dsn?: SpoolDsn;
  /** Who handed it to us. */
  client?: { address?: string; helo?: string; user?: string };
  /** Set on bounces this relay generated: the id of the original. */
  bounceOf?: string;
}

export interface DeliveryState {
  attempts: number;
  /** ms since epoch. */
  nextAttemptAt: number;
  lastError?: string;
  /** Recipients still to deliver, when some were already done (delivered or bounced). */
  remaining?: string[];
}

export interface HeldInfo {
  heldAt: number;
  reason: string;
  error?: string;
  remaining?: string[];
  attempts?: number;
}

export interface DeadInfo {
  deadAt: number;
  reason: string;
  failures?: Array<{ address: string; status: string; diagnostic: string }>;
}

export type SpoolArea = 'queue' | 'held' | 'dead';

/** Sortable (time first) and unique: 9 base-36 chars of time, 10 hex chars of randomness. */
export function newId(now = Date.now()): string {
  return `${now.toString(36).toUpperCase().padStart(9, '0')}${randomBytes(5).toString('hex').toUpperCase()}`;
}

const ID = /^[0-9A-Za-z][0-9A-Za-z._-]{0,80}$/;
export function isValidId(id: string): boolean {
  return ID.test(id);
}

function validHeader(header: SpoolHeader): SpoolHeader {
  if (header?.v !== 1 || typeof header.id !== 'string' || typeof header.from !== 'string' || !Array.isArray(header.to)) {
    throw new Error('invalid spool header');
  }
  return header;
}

export function encodeHeader(header: SpoolHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  return Buffer.concat([Buffer.from(`${MAGIC} ${json.length}\n`, 'latin1'), json, Buffer.from('\n')]);
}

/** Parses the header at the start of `buf`; returns it and the offset of the message. */
export function decodeHeader(buf: Buffer): { header: SpoolHeader; offset: number } {
  const nl = buf.indexOf(10);
  if (nl === -1 || nl > 64) throw new Error('not a sluice spool file (no header line)');
  const line = buf.toString('latin1', 0, nl);
  const m = /^SLUICE-SPOOL\/1 (\d+)$/.exec(line);
  if (!m) throw new Error('not a sluice spool file (bad magic)');
  const len = Number(m[1]);
  const start = nl + 1;
  if (buf.length < start + len + 1) throw new Error('truncated spool header');
  const header = JSON.parse(buf.toString('utf8', start, start + len)) as SpoolHeader;
  return { header: validHeader(header), offset: start + len + 1 };
}

/**
 * One message in a segment:
 *
 *   SLUICE-SEG/1 <header bytes> <body bytes> <crc32 of header and body, 8 hex>\n
 *   <header JSON>\n
 *   <body>
 *
 * The CRC tells a torn tail (a batch the kill cut short: never acknowledged) from a whole record.
 */
export function encodeRecord(header: SpoolHeader, body: Buffer[]): Buffer {
  const json = Buffer.from(`${JSON.stringify(header)}\n`, 'utf8');
  let crc = crc32(json);
  let bodyLength = 0;
  for (const b of body) {
    crc = crc32(b, crc);
    bodyLength += b.length;
  }
  const line = Buffer.from(`${RECORD_MAGIC} ${json.length} ${bodyLength} ${crc.toString(16).padStart(8, '0')}\n`, 'latin1');
  return Buffer.concat([line, json, ...body], line.length + json.length + bodyLength);
}

export interface DecodedRecord {
  header: SpoolHeader;
  /** Offset of the body in the segment, and its length. */
  offset: number;
  length: number;
}

const RECORD_LINE = /^SLUICE-SEG\/1 (\d+) (\d+) ([0-9a-f]{8})$/;

/**
 * The records of a segment, in order, up to the first that is not whole (a torn tail): `end` is
 * where the whole ones stop, `torn` whether bytes follow that were not a whole record.
 */
export function decodeRecords(buf: Buffer): { records: DecodedRecord[]; end: number; torn: boolean } {
  const records: DecodedRecord[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const nl = buf.indexOf(10, pos);
    if (nl === -1 || nl - pos > 64) break;
    const m = RECORD_LINE.exec(buf.toString('latin1', pos, nl));
    if (!m) break;
    const headerLength = Number(m[1]);
    const length = Number(m[2]);
    const start = nl + 1;
    const offset = start + headerLength;
    if (offset + length > buf.length) break;
    const crc = crc32(buf.subarray(offset, offset + length), crc32(buf.subarray(start, offset)));
    if (crc.toString(16).padStart(8, '0') !== m[3]) break;
    let header: SpoolHeader;
    try {
      header = validHeader(JSON.parse(buf.toString('utf8', start, offset)) as SpoolHeader);
    } catch {
      break;
    }
    records.push({ header, offset, length });
    pos = offset + length;
  }
  return { records, end: pos, torn: pos < buf.length };
}

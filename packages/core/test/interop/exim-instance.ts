/**
 * A private Exim 4 for the interop tests (scripts/exim/start.sh), and what it stored and logged.
 *
 * Exim stores every accepted message in DIR/mail/new (a maildir, one file per message with all its
 * recipients in Envelope-to:, CRLF line ends) after adding its own header fields on top
 * (Return-path:, Envelope-to:, Received:). The tests parse each file into header fields and body and
 * compare them with what was sent. Exim's main log has one "<=" line per accepted message, with the
 * protocol (P=esmtp, esmtps with TLS, esmtpa/esmtpsa with AUTH), A= (the authenticator and user),
 * K (received with CHUNKING) and the Message-ID.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { createPool, type Pool, type PoolOptions } from '../../src/index.js';

export const EXIM_ENABLED = process.env.SLUICE_EXIM_INTEROP === '1';
const REPO = path.resolve(import.meta.dirname, '../../../..');
const SCRIPTS = path.join(REPO, 'scripts/exim');

export interface EximInstance {
  port: number;
  dir: string;
  /** PEM of the private CA that signed the server's certificate. */
  ca: Buffer;
  stop(): void;
}

/**
 * Starts an instance in its own directory (under SLUICE_EXIM_DIR, default the OS temp dir, outside
 * the repo: the Debian-exim user must reach it) with an empty maildir. `env`: EXIM_RECIPIENTS_MAX,
 * EXIM_ACCEPT_MAX.
 */
export function startExim(name: string, env: Record<string, string> = {}): EximInstance {
  const dir = path.join(process.env.SLUICE_EXIM_DIR ?? path.join(os.tmpdir(), 'sluice-exim'), name);
  let out: string;
  try {
    out = execFileSync(path.join(SCRIPTS, 'start.sh'), [dir], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, EXIM_FRESH: '1', ...env },
    });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`scripts/exim/start.sh failed (is Exim unpacked? sudo scripts/exim/install.sh): ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
  const m = /EXIM_PORT=(\d+)\s*$/.exec(out.trim());
  if (!m) throw new Error(`scripts/exim/start.sh printed no EXIM_PORT line:\n${out}`);
  return {
    port: Number(m[1]),
    dir,
    ca: fs.readFileSync(path.join(dir, 'tls/ca.pem')),
    stop: () => execFileSync(path.join(SCRIPTS, 'stop.sh'), [dir], { stdio: 'ignore' }),
  };
}

export interface EximHandle {
  /** The running instance (set in beforeAll). */
  readonly instance: EximInstance;
  /** A pool for it (127.0.0.1, no STARTTLS unless the options say so), destroyed after each test. */
  pool(options?: Partial<PoolOptions>): Pool;
}

/** Call inside a describe: starts the instance in beforeAll, stops it in afterAll, and destroys the
 * pools a test made after it. */
export function useExim(name: string, env: Record<string, string> = {}): EximHandle {
  let instance: EximInstance | undefined;
  const pools: Pool[] = [];
  beforeAll(() => {
    instance = startExim(name, env);
  });
  afterAll(() => {
    instance?.stop();
  });
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.destroy()));
  });
  return {
    get instance() {
      if (!instance) throw new Error('the Exim instance is not started (use it inside tests)');
      return instance;
    },
    pool(options = {}) {
      const p = createPool({ host: '127.0.0.1', port: this.instance.port, name: 'client.sluice.test', ignoreTLS: true, ...options });
      pools.push(p);
      return p;
    },
  };
}

// ------------------------------------------------------------------------------------------------
// Stored messages
// ------------------------------------------------------------------------------------------------

export interface StoredMessage {
  file: string;
  raw: Buffer;
  /** Header fields as stored, each with its folding (CRLF inside) but without the final CRLF. */
  fields: string[];
  /** Everything after the blank line that ends the header. */
  body: Buffer;
  messageId: string | null;
  envelopeTo: string[];
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

/** Header fields and body of a message (RFC 5322 §2.2: a field goes on over lines starting with WSP). */
export function splitMessage(raw: Buffer): { fields: string[]; body: Buffer } {
  const end = raw.indexOf(CRLFCRLF);
  if (end === -1) throw new Error('no blank line after the header');
  const header = raw.subarray(0, end).toString('latin1');
  return { fields: header.split(/\r\n(?![ \t])/), body: raw.subarray(end + 4) };
}

function field(fields: string[], name: string): string | null {
  const prefix = `${name.toLowerCase()}:`;
  const f = fields.find((x) => x.toLowerCase().startsWith(prefix));
  return f === undefined
    ? null
    : f
        .slice(prefix.length)
        .replace(/\r\n[ \t]+/g, ' ')
        .trim();
}

export function readStored(dir: string): StoredMessage[] {
  const maildir = path.join(dir, 'mail/new');
  let names: string[];
  try {
    names = fs.readdirSync(maildir);
  } catch {
    return [];
  }
  return names.map((name) => {
    const file = path.join(maildir, name);
    const raw = fs.readFileSync(file);
    const { fields, body } = splitMessage(raw);
    const to = field(fields, 'Envelope-to');
    return { file, raw, fields, body, messageId: field(fields, 'Message-ID'), envelopeTo: to ? to.split(/,\s*/) : [] };
  });
}

/**
 * Waits until Exim stored `count` files for each Message-ID (deliveries run in processes of their
 * own, after the 250). Polls the maildir; fails with what is there.
 */
export async function waitStored(dir: string, messageIds: string[], timeout = 30_000, count = 1): Promise<Map<string, StoredMessage[]>> {
  const until = Date.now() + timeout;
  for (;;) {
    const byId = new Map<string, StoredMessage[]>();
    for (const m of readStored(dir)) {
      if (m.messageId === null) continue;
      const list = byId.get(m.messageId) ?? [];
      list.push(m);
      byId.set(m.messageId, list);
    }
    if (messageIds.every((id) => (byId.get(id)?.length ?? 0) >= count)) return byId;
    if (Date.now() > until) {
      const missing = messageIds.filter((id) => (byId.get(id)?.length ?? 0) < count);
      throw new Error(
        `Exim stored ${messageIds.length - missing.length}/${messageIds.length} messages within ${timeout} ms; missing ${missing.slice(0, 5).join(', ')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Exim's own header fields, added on top of what it received. */
const EXIM_FIELDS = new Set(['return-path', 'envelope-to', 'received']);

/**
 * The stored message is the sent one with Exim's fields on top: its header fields end with exactly the
 * sent ones, what comes before them is only Return-path/Envelope-to/Received, and the bodies are the
 * same bytes. Returns a description of the first difference, or null.
 */
export function differenceFromSent(stored: StoredMessage, sent: Buffer): string | null {
  const { fields, body } = splitMessage(sent);
  const added = stored.fields.length - fields.length;
  if (added < 0) return `stored ${stored.fields.length} header fields, sent ${fields.length}`;
  const extra = stored.fields.slice(0, added).map((f) => f.slice(0, f.indexOf(':')).toLowerCase());
  const foreign = extra.filter((name) => !EXIM_FIELDS.has(name));
  if (foreign.length > 0) return `unexpected header fields on top: ${foreign.join(', ')}`;
  for (let i = 0; i < fields.length; i++) {
    if (stored.fields[added + i] !== fields[i])
      return `header field ${i} differs: sent ${JSON.stringify(fields[i])}, stored ${JSON.stringify(stored.fields[added + i])}`;
  }
  if (!stored.body.equals(body)) {
    let i = 0;
    while (i < body.length && stored.body[i] === body[i]) i++;
    return `bodies differ at byte ${i} of ${body.length} (stored ${stored.body.length} bytes)`;
  }
  return null;
}

// ------------------------------------------------------------------------------------------------
// Exim's main log
// ------------------------------------------------------------------------------------------------

export interface Reception {
  /** Exim's message id, as in "250 OK id=…". */
  eximId: string;
  /** P=: esmtp, esmtps (TLS), esmtpa / esmtpsa (authenticated). */
  protocol: string;
  /** A=: e.g. "plain:sluice". */
  auth: string | null;
  /** X=: the TLS cipher suite. */
  tls: string | null;
  /** K: received with CHUNKING (BDAT). */
  chunking: boolean;
  messageId: string | null;
  recipients: string[];
}

export function mainlogSize(dir: string): number {
  try {
    return fs.statSync(path.join(dir, 'log/mainlog')).size;
  } catch {
    return 0;
  }
}

export function mainlog(dir: string, from = 0): string {
  try {
    return fs.readFileSync(path.join(dir, 'log/mainlog')).subarray(from).toString('utf8');
  } catch {
    return '';
  }
}

/** The "<=" lines: one per accepted message. */
export function receptions(dir: string, from = 0): Map<string, Reception> {
  const out = new Map<string, Reception>();
  for (const line of mainlog(dir, from).split('\n')) {
    const m = /^\S+ \S+ (\S+) <= \S+ (.*)$/.exec(line);
    if (!m) continue;
    const rest = m[2]!;
    const forAt = rest.lastIndexOf(' for ');
    out.set(m[1]!, {
      eximId: m[1]!,
      protocol: /(?:^| )P=(\S+)/.exec(rest)?.[1] ?? '',
      auth: /(?:^| )A=(\S+)/.exec(rest)?.[1] ?? null,
      tls: /(?:^| )X=(\S+)/.exec(rest)?.[1] ?? null,
      chunking: / K(?: |$)/.test(rest),
      messageId: /(?:^| )id=(\S+)/.exec(rest)?.[1] ?? null,
      recipients: forAt === -1 ? [] : rest.slice(forAt + 5).split(' '),
    });
  }
  return out;
}

/** Exim's id in its "250 OK id=…" reply. */
export function eximId(response: string): string | null {
  return /\bid=(\S+)/.exec(response)?.[1] ?? null;
}

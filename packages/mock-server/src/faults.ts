import { MockServerError } from './errors.js';
import { parseReply } from './replies.js';
import type { FaultAction, FaultCommand, FaultRule } from './types.js';

const COMMANDS: ReadonlySet<FaultCommand> = new Set<FaultCommand>([
  'CONNECT',
  'EHLO',
  'HELO',
  'STARTTLS',
  'AUTH',
  'MAIL',
  'RCPT',
  'DATA',
  'DOT',
  'BDAT',
  'BDAT_LAST',
  'RSET',
  'NOOP',
  'QUIT',
]);
const ACTIONS: ReadonlySet<FaultAction> = new Set<FaultAction>(['reply', 'close', 'drop', 'drop-in-body', 'stall', 'delay', 'unsolicited']);

/** mulberry32: a tiny, fast, well-distributed 32-bit PRNG; same seed, same sequence. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What a rule is matched against. */
export interface FaultEvent {
  command: FaultCommand;
  /** For BDAT: whether this is the LAST chunk (a BDAT rule matches every chunk). */
  last?: boolean;
  connection: number;
  /** Server-wide transaction number, 0 outside a transaction. */
  message: number;
  messageOnConnection: number;
  /** RCPT: the address being added. */
  recipient?: string;
  /** Accepted recipients of the transaction so far. */
  recipients?: readonly string[];
  /** The transaction's reverse-path (or MAIL's, for MAIL). */
  sender?: string;
}

function matchAddress(pattern: string | RegExp, address: string): boolean {
  if (typeof pattern === 'string') return pattern.toLowerCase() === address.toLowerCase();
  pattern.lastIndex = 0;
  return pattern.test(address);
}

function validate(rule: FaultRule, index: number): void {
  const where = `faults[${index}]`;
  if (!rule || typeof rule !== 'object') throw new MockServerError('EMOCKOPTIONS', `${where} must be an object`);
  if (!COMMANDS.has(rule.command)) throw new MockServerError('EMOCKOPTIONS', `${where}.command ${JSON.stringify(rule.command)} is not a FaultCommand`);
  const action = rule.action ?? 'reply';
  if (!ACTIONS.has(action)) throw new MockServerError('EMOCKOPTIONS', `${where}.action ${JSON.stringify(rule.action)} is not a FaultAction`);
  if ((action === 'reply' || action === 'unsolicited') && rule.reply === undefined) {
    throw new MockServerError('EMOCKOPTIONS', `${where}: action '${action}' needs a reply`);
  }
  if (rule.reply !== undefined) parseReply(rule.reply, true);
  if (rule.probability !== undefined && !(rule.probability >= 0 && rule.probability <= 1)) {
    throw new MockServerError('EMOCKOPTIONS', `${where}.probability must be within 0..1`);
  }
  for (const key of ['message', 'messageOnConnection', 'connection', 'times', 'afterRecipients', 'delayMs', 'afterBytes'] as const) {
    const v = rule[key];
    if (v !== undefined && (typeof v !== 'number' || !(v >= 0))) throw new MockServerError('EMOCKOPTIONS', `${where}.${key} must be a number >= 0`);
  }
  if (action === 'delay' && rule.delayMs === undefined) throw new MockServerError('EMOCKOPTIONS', `${where}: action 'delay' needs delayMs`);
}

/**
 * Fault rules in order; the first rule that matches an event applies. The PRNG is drawn only when
 * everything else about a probabilistic rule matched, so the same seed and the same command
 * sequence give the same faults.
 */
export class FaultEngine {
  private rules: readonly FaultRule[] = [];
  private used: number[] = [];
  private random: () => number;

  constructor(
    rules: readonly FaultRule[],
    private seed: number,
  ) {
    this.random = mulberry32(seed);
    this.set(rules);
  }

  get active(): boolean {
    return this.rules.length > 0;
  }

  set(rules: readonly FaultRule[]): void {
    rules.forEach(validate);
    this.rules = rules.map((r) => ({ ...r }));
    this.used = rules.map(() => 0);
  }

  /** Reset the `times` counters and restart the PRNG. */
  reset(seed = this.seed): void {
    this.seed = seed;
    this.random = mulberry32(seed);
    this.used = this.rules.map(() => 0);
  }

  match(event: FaultEvent): FaultRule | null {
    const rules = this.rules;
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i];
      if (rule.command !== event.command && !(rule.command === 'BDAT_LAST' && event.command === 'BDAT' && event.last)) continue;
      if (rule.times !== undefined && this.used[i] >= rule.times) continue;
      if (rule.connection !== undefined && rule.connection !== event.connection) continue;
      if (rule.message !== undefined && rule.message !== event.message) continue;
      if (rule.messageOnConnection !== undefined && (event.message === 0 || rule.messageOnConnection !== event.messageOnConnection)) continue;
      if (rule.sender !== undefined && (event.sender === undefined || !matchAddress(rule.sender, event.sender))) continue;
      if (rule.recipient !== undefined && !this.recipientMatches(rule.recipient, event)) continue;
      if (rule.afterRecipients !== undefined && (event.recipients?.length ?? 0) < rule.afterRecipients) continue;
      if (rule.probability !== undefined && this.random() >= rule.probability) continue;
      this.used[i]++;
      return rule;
    }
    return null;
  }

  /** RCPT: the recipient being added; commands after RCPT: any accepted recipient. */
  private recipientMatches(pattern: string | string[] | RegExp, event: FaultEvent): boolean {
    const candidates = event.recipient !== undefined ? [event.recipient] : (event.recipients ?? []);
    const patterns = Array.isArray(pattern) ? pattern : [pattern];
    return candidates.some((address) => patterns.some((p) => matchAddress(p, address)));
  }
}

/**
 * Releasing held messages (unknown outcome upstream) back into the queue: the one implementation
 * behind `sluice-relay release` on a stopped relay's spool, `POST /release` and `relay.release()`.
 */
import { RelayConfigError, RelayError } from './config.js';
import { type DeliveryState, type HeldInfo, isValidId, type Spool } from './spool.js';

export interface Released {
  id: string;
  receivedAt: number;
  state: DeliveryState;
}

/**
 * Moves the given held messages (every one for 'all') to queue/, with the recipients still to do and
 * the attempts so far. Every id is checked before anything moves: a bad id is ERELAYCONFIG, an id
 * not in held/ is ENOTHELD, and then nothing is released. With 'all', a message that disappears
 * meanwhile (released or deleted by someone else) is skipped.
 */
export async function releaseHeld(spool: Spool, ids: string[] | 'all'): Promise<Released[]> {
  const all = ids === 'all';
  const list = all ? await spool.list('held') : ids;
  for (const id of list) if (!isValidId(id)) throw new RelayConfigError(`Not a message id: ${JSON.stringify(id)}`);
  if (!all) {
    const missing: string[] = [];
    for (const id of list) if (!(await spool.exists('held', id))) missing.push(id);
    if (missing.length) throw new RelayError('ENOTHELD', `No held message ${missing.join(', ')} in ${spool.heldDir}`, 404);
  }
  const done: Released[] = [];
  for (const id of new Set(list)) {
    let receivedAt: number;
    let to: string[];
    try {
      ({ receivedAt, to } = await spool.readHeader('held', id));
    } catch (err) {
      if (all && (err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const info = await spool.readMeta<HeldInfo>('held', id);
    const state: DeliveryState = {
      attempts: info?.attempts ?? 0,
      nextAttemptAt: 0,
      ...(info?.remaining && info.remaining.length !== to.length ? { remaining: info.remaining } : {}),
    };
    await spool.move('held', 'queue', id, state);
    done.push({ id, receivedAt, state });
  }
  return done;
}

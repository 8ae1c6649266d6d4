/**
 * Redis connections. BullMQ and the budget each get their own clients; every client waits through an
 * outage (`maxRetriesPerRequest: null`: commands queue until ioredis reconnects) instead of failing.
 */
import { Redis, type RedisOptions } from 'ioredis';

/** ioredis options, a `redis://` URL, or an ioredis instance (duplicated, never used directly). */
export type RedisConnection = RedisOptions | string | Redis;

/** `onError` hears connection errors (ioredis reconnects by itself; without a listener it would print them). */
export function createClient(connection: RedisConnection, name: string, onError: (err: Error) => void = () => {}): Redis {
  const base = { maxRetriesPerRequest: null, connectionName: name } as const;
  const client =
    connection instanceof Redis
      ? connection.duplicate(base)
      : typeof connection === 'string'
        ? new Redis(connection, base)
        : new Redis({ ...connection, ...base });
  client.on('error', onError);
  return client;
}

/**
 * The Lua scripts that are the only writers of an account's budget keys. Every script reads the time
 * from `redis.call('TIME')`: leases and the rate are timed by Redis's clock, never by the workers'
 * (whose clocks drift apart). Every key of one account carries the hash tag `{account}`, so each
 * script touches one Redis Cluster slot.
 */

/** Milliseconds since the epoch on the Redis server's clock. */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * The limit K in force, with additive increase: below the configured max and past the cooldown,
 * K grows by one per probe interval.
 * KEYS[2] = the limit hash {current, probeAt}; ARGV[max], ARGV[probe] given by the caller's index.
 */
const LIMIT = (maxArg: number, probeArg: number) => `local max = tonumber(ARGV[${maxArg}])
local cur = tonumber(redis.call('HGET', KEYS[2], 'current') or max)
if cur > max then cur = max end
local probeAt = tonumber(redis.call('HGET', KEYS[2], 'probeAt') or 0)
if cur < max and now >= probeAt then
  cur = cur + 1
  probeAt = now + tonumber(ARGV[${probeArg}])
  redis.call('HSET', KEYS[2], 'current', cur, 'probeAt', probeAt)
end`;

/**
 * Acquire a connection lease. KEYS: conns zset, limit hash. ARGV: leaseId, ttl, max, probe.
 * Returns {1, K, held} on success, or {0, K, held, msUntilSomethingMayFree}.
 */
export const ACQUIRE = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
${LIMIT(3, 4)}
local n = redis.call('ZCARD', KEYS[1])
if n < cur then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  return {1, cur, n + 1}
end
local wait = 5000
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then wait = math.min(wait, tonumber(first[2]) - now) end
if cur < max then wait = math.min(wait, probeAt - now) end
return {0, cur, n, math.max(1, wait)}`;

/** Renew leases. KEYS: conns. ARGV: ttl, leaseId… Returns one flag per lease: 1 renewed, 0 lost (expired or gone). */
export const RENEW = `${NOW}
local out = {}
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) > now then
    redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i])
    out[#out + 1] = 1
  else
    redis.call('ZREM', KEYS[1], ARGV[i])
    out[#out + 1] = 0
  end
end
return out`;

/** Release a lease and wake one waiter. KEYS: conns, freed list. ARGV: leaseId, max. */
export const RELEASE = `redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('LPUSH', KEYS[2], '1')
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
redis.call('PEXPIRE', KEYS[2], 60000)
return 1`;

/**
 * Multiplicative decrease after a "too many connections" or throttling reply, seen by any worker:
 * K halves (at least 1) and stays down for the cooldown, then grows back one per probe interval.
 * Reports of the same burst (within quiet ms of a decrease) count once.
 * KEYS: conns, limit hash. ARGV: max, cooldown, quiet. Returns {decreased 0|1, K}.
 */
export const THROTTLE = `${NOW}
local max = tonumber(ARGV[1])
local cur = tonumber(redis.call('HGET', KEYS[2], 'current') or max)
if cur > max then cur = max end
local quietUntil = tonumber(redis.call('HGET', KEYS[2], 'quietUntil') or 0)
if now < quietUntil then return {0, cur} end
cur = math.max(1, math.floor(cur / 2))
redis.call('HSET', KEYS[2], 'current', cur, 'probeAt', now + tonumber(ARGV[2]), 'quietUntil', now + tonumber(ARGV[3]))
return {1, cur}`;

/** The budget in force. KEYS: conns, limit hash. ARGV: max. Returns {K, held}. */
export const STATE = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local max = tonumber(ARGV[1])
local cur = tonumber(redis.call('HGET', KEYS[2], 'current') or max)
if cur > max then cur = max end
return {cur, redis.call('ZCARD', KEYS[1])}`;

/**
 * Just before a message is handed to a connection: the crash markers, then one rate token (GCRA).
 * KEYS: sent marker, inflight marker, rate TAT key. ARGV: inflight ttl, run (jobId + the fetch's
 * token), interval ms (0: no rate), tolerance ms.
 * Returns {'sent', storedResult} | {'held', previousRun} | {'wait', ms} | {'ok', ''}.
 * A marker written by this same run is not a previous run: ioredis resends a command whose reply a
 * Redis restart cut off, and the script must answer the resent call as it answered the first.
 */
export const BEFORE_SEND = `${NOW}
local sent = redis.call('GET', KEYS[1])
if sent then return {'sent', sent} end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[2] then return {'held', holder} end
local interval = tonumber(ARGV[3])
if interval > 0 then
  local tat = tonumber(redis.call('GET', KEYS[3]) or now)
  if tat < now then tat = now end
  local allowAt = tat - tonumber(ARGV[4])
  if now < allowAt then return {'wait', tostring(math.ceil(allowAt - now))} end
  local nextTat = tat + interval
  redis.call('SET', KEYS[3], tostring(nextTat), 'PX', math.ceil(nextTat - now) + 1000)
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', tonumber(ARGV[1]))
return {'ok', ''}`;

/** After the 2xx: the sent marker (with the result) replaces the in-flight one. KEYS: sent, inflight. ARGV: result, ttl. */
export const MARK_SENT = `redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
redis.call('DEL', KEYS[2])
return 1`;

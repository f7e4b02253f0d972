/**
 * ioredis connections. Workers use `maxRetriesPerRequest: null` (BullMQ requires it): while Redis is away,
 * commands wait for the reconnect instead of failing, so workers pause and resume by themselves.
 * Command-line tools fail fast instead.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../logger.ts';

export interface ConnectOptions {
  /** Fail commands quickly when Redis is unreachable (CLIs, producers). @defaultValue false */
  failFast?: boolean;
  name?: string;
  /** Logs the first error of an outage and the reconnect; without it connection errors reach callers only. */
  logger?: Logger;
}

export function createRedis(url: string, options: ConnectOptions = {}): Redis {
  const base: RedisOptions = {
    connectionName: options.name,
    lazyConnect: false,
  };
  const redis = options.failFast
    ? new Redis(url, {
        ...base,
        maxRetriesPerRequest: 1,
        enableOfflineQueue: true,
        connectTimeout: 3_000,
        // A frozen or black-holed server accepts connections but never answers.
        commandTimeout: 5_000,
        retryStrategy: (times) => (times > 3 ? null : 200 * times),
      })
    : new Redis(url, {
        ...base,
        maxRetriesPerRequest: null,
        retryStrategy: (times) => Math.min(100 * times, 2_000),
      });
  // Without a listener ioredis prints every reconnect attempt to stderr; log once per outage instead.
  let down = false;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    options.logger?.warn({ connection: options.name, err: err.message, url: redactUrl(url) }, 'Redis connection lost; reconnecting');
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    options.logger?.info({ connection: options.name }, 'Redis connection restored');
  });
  return redis;
}

export class RedisUnavailableError extends Error {
  override name = 'RedisUnavailableError';
}

/** Resolves when Redis answers PING, or throws a message an operator can act on. */
export async function assertReachable(redis: Redis, url: string, timeoutMs = 3_000): Promise<void> {
  const timer = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref(),
  );
  try {
    await Promise.race([redis.ping(), timer]);
  } catch (e) {
    throw new RedisUnavailableError(
      `Redis is not reachable at ${redactUrl(url)} (${(e as Error).message}). Start it (redis-server, or docker run -d -p 127.0.0.1:6379:6379 redis:7.4-alpine) or set REDIS_URL.`,
    );
  }
}

/** Redis is set up in a way that can lose or corrupt the service's data. */
export class RedisConfigError extends Error {
  override name = 'RedisConfigError';
}

/**
 * Refuses a Redis that may evict keys: an evicted queue job loses events, an evicted decision or day total counts
 * money twice. Read from INFO (CONFIG may be disabled on managed Redis).
 */
export async function assertNoEviction(redis: Redis, url: string): Promise<void> {
  const info = await redis.info('memory');
  const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1] ?? 'unknown';
  if (policy !== 'noeviction') {
    throw new RedisConfigError(
      `Redis at ${redactUrl(url)} has maxmemory-policy ${policy}: under memory pressure it would evict queued events, ` +
        'decisions and day totals (events lost, money counted twice). Set maxmemory-policy noeviction ' +
        '(redis.conf, --maxmemory-policy noeviction, or CONFIG SET maxmemory-policy noeviction).',
    );
  }
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable REDIS_URL)';
  }
}

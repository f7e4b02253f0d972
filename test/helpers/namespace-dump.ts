/** Everything a namespace holds in Redis, as text: every key name and every value, of every type. */
import type { Redis } from 'ioredis';
import type { Keys } from '../../src/redis/keys.ts';

export async function namespaceDump(redis: Redis, keys: Keys): Promise<{ keys: string[]; text: string }> {
  const names: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${keys.base}:*`, 'COUNT', 1000);
    names.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  const parts: string[] = [];
  for (const key of names.sort()) {
    const type = await redis.type(key);
    const value =
      type === 'string' ? await redis.get(key)
      : type === 'hash' ? await redis.hgetall(key)
      : type === 'list' ? await redis.lrange(key, 0, -1)
      : type === 'set' ? await redis.smembers(key)
      : type === 'zset' ? await redis.zrange(key, 0, -1, 'WITHSCORES')
      : type === 'stream' ? await redis.xrange(key, '-', '+')
      : `(type ${type})`;
    parts.push(`${key} ${type} ${JSON.stringify(value)}`);
  }
  return { keys: names, text: parts.join('\n') };
}

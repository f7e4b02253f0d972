/** Everything a namespace holds in Redis, as text: every key name and every value, of every type. */
import { scanAll, type RedisClient } from '../../src/redis/client.ts';
import type { Keys } from '../../src/redis/keys.ts';

/** Every key of every shard and global group (SCAN on every master); a key is listed once. */
export async function namespaceDump(redis: RedisClient, keys: Keys): Promise<{ keys: string[]; text: string }> {
  const seen = new Set<string>();
  for await (const batch of scanAll(redis, `${keys.base}:*`, 1000)) for (const key of batch) seen.add(key);
  const names = [...seen];
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

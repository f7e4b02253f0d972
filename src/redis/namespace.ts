/** A namespace as a whole: every key riskmon writes for it starts with `rm:<namespace>:` (src/redis/keys.ts). */
import type { Redis } from 'ioredis';
import type { Keys } from './keys.ts';

/**
 * Deletes every key of the namespace (UNLINK, in SCAN pages): for the namespaces a replay or a test made for
 * itself, never for live data. Returns how many keys it removed.
 */
export async function deleteNamespace(redis: Redis, keys: Keys): Promise<number> {
  let removed = 0;
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${keys.base}:*`, 'COUNT', 1000);
    if (found.length) removed += await redis.unlink(...found);
    cursor = next;
  } while (cursor !== '0');
  return removed;
}

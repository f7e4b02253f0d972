/** A namespace as a whole: every key riskmon writes for it starts with `rm:<namespace>:` (src/redis/keys.ts). */
import { masterNodes, type RedisClient } from './client.ts';
import type { Keys } from './keys.ts';

/**
 * Deletes every key of the namespace (UNLINK, in SCAN pages of every master): for the namespaces a replay or a
 * test made for itself, never for live data. Returns how many keys it removed.
 */
export async function deleteNamespace(redis: RedisClient, keys: Keys): Promise<number> {
  let removed = 0;
  for (const node of masterNodes(redis)) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', `${keys.base}:*`, 'COUNT', 1000);
      if (found.length) {
        // One key per UNLINK: the keys of a page are in many slots, which a cluster node takes only one by one.
        const pipeline = node.pipeline();
        for (const key of found) pipeline.unlink(key);
        for (const [err, n] of (await pipeline.exec()) ?? []) {
          if (err) throw err;
          removed += Number(n);
        }
      }
      cursor = next;
    } while (cursor !== '0');
  }
  return removed;
}

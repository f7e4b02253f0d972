/** Reading what the shards keep, gathered over every shard, as tests look at it (src/redis/keys.ts has the layout). */
import type { RedisClient } from '../../src/redis/client.ts';
import type { Keys } from '../../src/redis/keys.ts';

/** Every shard's decision stream entries, merged in stream-id order. */
export async function decisionStreamEntries(redis: RedisClient, keys: Keys, start = '-'): Promise<[string, string[]][]> {
  const all = (await Promise.all(keys.shardIds.map((s) => redis.xrange(keys.decisionStream(s), start, '+')))).flat();
  return all.sort(([a], [b]) => compareStreamIds(a, b));
}

/** Entries in every shard's decision stream. */
export async function decisionStreamLength(redis: RedisClient, keys: Keys): Promise<number> {
  const lengths = await Promise.all(keys.shardIds.map((s) => redis.xlen(keys.decisionStream(s))));
  return lengths.reduce((a, b) => a + b, 0);
}

/** Every shard's due settlements as [eventId, settleAt ms], by settleAt then eventId. */
export async function dueSettlements(redis: RedisClient, keys: Keys): Promise<[string, number][]> {
  const all: [string, number][] = [];
  for (const s of keys.shardIds) {
    const flat = await redis.zrange(keys.settlementDue(s), 0, -1, 'WITHSCORES');
    // Redis writes an infinite score as "inf" (a case holding its charge for a person).
    for (let i = 0; i < flat.length; i += 2) all.push([flat[i]!, Number(flat[i + 1]!.replace('inf', 'Infinity'))]);
  }
  return all.sort(([a, x], [b, y]) => x - y || (a < b ? -1 : a > b ? 1 : 0));
}

/** The stored decision key of a charge of `userId`. */
export function decisionKey(keys: Keys, userId: string, eventId: string): string {
  return keys.decision(keys.shardOf(userId), eventId);
}

export function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am - bm || as - bs;
}

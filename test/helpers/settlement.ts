/** Release-side test data: decision records and due entries written as the rules script writes them. */
import type { Context } from '../../src/context.ts';
import type { Decision } from '../../src/decisions/decision.ts';
import type { RedisClient } from '../../src/redis/client.ts';
import type { Keys } from '../../src/redis/keys.ts';

/**
 * Writes a decision, its due entry and settlement info as the rules script does (SET with expiry, ZADD, HSET, the
 * kind's running totals, all in the user's shard), for release-side tests that need a due time the rules would not
 * give today.
 */
export async function scheduleDecision(ctx: Context, eventId: string, dueMs: number, over: Partial<Decision> = {}): Promise<Decision> {
  const d: Decision = {
    eventId,
    userId: `u-${eventId}`,
    merchantId: 'm-1',
    amount: 10_000,
    card: '****1111',
    occurredAt: new Date(dueMs - 86_400_000).toISOString(),
    outcome: 'approve',
    rules: [],
    reasons: [],
    observed: { cardCount: 1, dayTotalBefore: 0, creditAvailable: null, localDate: '2026-03-10', localTime: '10:00:00' },
    settleAt: new Date(dueMs).toISOString(),
    decidedAt: new Date(dueMs - 86_000_000).toISOString(),
    configVersion: 'cfg-test',
    ...over,
  };
  const kind = d.outcome === 'review' ? 'held' : 'scheduled';
  // In the user's shard, as the rules script writes them (one slot).
  const shard = ctx.keys.shardOf(d.userId);
  await ctx.redis
    .multi()
    .set(ctx.keys.decision(shard, eventId), JSON.stringify(d), 'EX', 35 * 86_400)
    .zadd(ctx.keys.settlementDue(shard), dueMs, eventId)
    .hset(ctx.keys.settlementInfo(shard), eventId, `${d.merchantId}\t${d.amount}\t${kind}`)
    .hincrby(ctx.keys.settlementStats(shard), `${kind}Count`, 1)
    .hincrby(ctx.keys.settlementStats(shard), `${kind}Amount`, d.amount)
    .exec();
  return d;
}

/** Every settlement in the shards' settlement logs (nothing archived and trimmed them), in log order per shard. */
export async function settlementLog(redis: RedisClient, keys: Keys): Promise<{ eventId: string; date: string }[]> {
  const out: { eventId: string; date: string }[] = [];
  for (const shard of keys.shardIds) {
    for (const [, fields] of await redis.xrange(keys.settlementLog(shard), '-', '+')) {
      const f = Object.fromEntries(fields.flatMap((v, i) => (i % 2 === 0 ? [[v, fields[i + 1]!]] : [])));
      out.push({ eventId: f.s!, date: f.on! });
    }
  }
  return out;
}

/** Settlements by eventId → the ledger date it was paid into; an eventId paid twice is an error. */
export async function settledOn(ctx: Context): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const { eventId, date } of await settlementLog(ctx.redis, ctx.keys)) {
    if (eventId in out) throw new Error(`${eventId} settled twice (${out[eventId]} and ${date})`);
    out[eventId] = date;
  }
  return out;
}

/** The settlement dates that have a ledger in any shard, sorted. */
export async function ledgerDates(ctx: Context): Promise<string[]> {
  const all = new Set((await Promise.all(ctx.keys.shardIds.map((s) => ctx.redis.smembers(ctx.keys.ledgerDates(s))))).flat());
  return [...all].sort();
}

/** How many shards have a ledger (the per-merchant hash) for each of `dates`, added up: 0 when no shard has any. */
export async function ledgersExisting(ctx: Context, ...dates: string[]): Promise<number> {
  const counts = await Promise.all(ctx.keys.shardIds.map((s) => ctx.redis.exists(...dates.map((d) => ctx.keys.ledger(s, d)))));
  return counts.reduce((a, b) => a + b, 0);
}

/** Transactions in every shard's due set. */
export async function dueCount(ctx: Context): Promise<number> {
  const counts = await Promise.all(ctx.keys.shardIds.map((s) => ctx.redis.zcard(ctx.keys.settlementDue(s))));
  return counts.reduce((a, b) => a + b, 0);
}

/** Every shard's settlement stats hash, each field added up over the shards (numbers). */
export async function settlementStatsHash(ctx: Context): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const h of await Promise.all(ctx.keys.shardIds.map((s) => ctx.redis.hgetall(ctx.keys.settlementStats(s))))) {
    for (const [field, value] of Object.entries(h)) out[field] = (out[field] ?? 0) + Number(value);
  }
  return out;
}

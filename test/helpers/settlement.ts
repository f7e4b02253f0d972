/** Release-side test data: decision records and due entries written as the rules script writes them. */
import type { Context } from '../../src/context.ts';
import type { Decision } from '../../src/decisions/decision.ts';

/**
 * Writes a decision record and its due entry as the rules script does (SET with expiry, ZADD, the kind's running
 * totals, all in the user's shard), for release-side tests that need a due time or a second decision the rules would not make today.
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
    .hincrby(ctx.keys.settlementStats(shard), `${kind}Count`, 1)
    .hincrby(ctx.keys.settlementStats(shard), `${kind}Amount`, d.amount)
    .exec();
  return d;
}

/** Every shard's settled markers (eventId → settlement date), merged: an eventId is settled in its user's shard only. */
export async function settledMarkers(ctx: Context): Promise<Record<string, string>> {
  return mergeHashes(await Promise.all(ctx.keys.shardIds.map((s) => ctx.redis.hgetall(ctx.keys.settledMarkers(s)))));
}

/** The settled marker of `eventId`, found in whichever shard has it (null: none has). */
export async function settledMarker(ctx: Context, eventId: string): Promise<string | null> {
  return (await settledMarkers(ctx))[eventId] ?? null;
}

/** Every shard's ledger entries of `date` (eventId → "merchant\tamount\tkind"), merged. */
export async function ledgerEntries(ctx: Context, date: string): Promise<Record<string, string>> {
  return mergeHashes(await Promise.all(ctx.keys.shardIds.map((s) => ctx.redis.hgetall(ctx.keys.ledgerEntries(s, date)))));
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

/** Merges per-shard hashes; a field in two shards is a layout error (an eventId belongs to one shard). */
function mergeHashes(hashes: Record<string, string>[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of hashes) {
    for (const [field, value] of Object.entries(h)) {
      if (field in out) throw new Error(`${field} is in two shards' hashes`);
      out[field] = value;
    }
  }
  return out;
}

/** Reading eventId claims back in tests (src/decisions/claims.ts): whether one is held, and by which event. */
import type { Context } from '../../src/context.ts';
import { claimDigest, claimField } from '../../src/decisions/claims.ts';
import { tokenizeCharge } from '../../src/events/card.ts';
import type { ChargeEvent } from '../../src/events/schema.ts';
import { scanAll, type RedisClient } from '../../src/redis/client.ts';
import { CLAIM_BUCKETS, type Keys } from '../../src/redis/keys.ts';
import { shardOf } from '../../src/pipeline/shards.ts';

/** Whether any generation holds a claim of `eventId` (SCAN over its bucket's hashes; `parts` as configured). */
export async function isClaimed(redis: RedisClient, keys: Keys, eventId: string, parts = 64): Promise<boolean> {
  const { field } = claimField(eventId, parts);
  for await (const found of scanAll(redis, `${keys.base}:id:{${shardOf(eventId, CLAIM_BUCKETS)}}:*`, 500)) {
    for (const key of found) if ((await redis.hexists(key, field)) === 1) return true;
  }
  return false;
}

/** Which of `candidates` (charges as sent, card numbers and all) holds the claim of their eventId at `clockMs`. */
export async function claimHolder<E extends Record<string, unknown>>(ctx: Context, candidates: E[], clockMs: number): Promise<E | undefined> {
  const held = await ctx.claims.held(String(candidates[0]!.eventId), clockMs);
  return candidates.find((e) => claimDigest(tokenizeCharge(e as unknown as ChargeEvent, ctx.cards), Date.parse(String(e.occurredAt))) === held);
}

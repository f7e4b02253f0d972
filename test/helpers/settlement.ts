/** Release-side test data: decision records and due entries written as the rules script writes them. */
import type { Context } from '../../src/context.ts';
import type { Decision } from '../../src/decisions/decision.ts';

/**
 * Writes a decision record and its due entry as the rules script does (SET with expiry, ZADD, the kind's running
 * totals), for release-side tests that need a due time or a second decision the rules would not make today.
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
  await ctx.redis
    .multi()
    .set(ctx.keys.decision(eventId), JSON.stringify(d), 'EX', 35 * 86_400)
    .zadd(ctx.keys.settlementDue, dueMs, eventId)
    .hincrby(ctx.keys.settlementStats, `${kind}Count`, 1)
    .hincrby(ctx.keys.settlementStats, `${kind}Amount`, d.amount)
    .exec();
  return d;
}

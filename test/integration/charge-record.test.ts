/**
 * The charge record (src/decisions/charge-record.ts): what Redis keeps of a decided charge once its whole decision
 * has gone to the archive. It alone must keep a charge from being decided twice, be pruned with the user's rule
 * state, and stay small.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import { parseChargeRecord } from '../../src/decisions/charge-record.ts';
import { testBatch } from '../helpers/batch.ts';
import { dropContext, testContext } from '../helpers/context.ts';
import { dueCount, settlementStatsHash } from '../helpers/settlement.ts';
import { decisionKey, decisionStreamLength } from '../helpers/shards.ts';

let ctx: Context | undefined;
afterEach(async () => {
  if (ctx) await dropContext(ctx);
  ctx = undefined;
});

const DAY = 86_400_000;
let seq = 0;
const charge = (userId: string, occurredAt: string, amount = 1_000, eventId = `cr-${++seq}`) => ({
  type: 'charge',
  eventId,
  userId,
  merchantId: 'm-1',
  cardId: '6222020000000017',
  amount,
  currency: 'CNY',
  occurredAt,
});

describe('charge record', () => {
  it('a charge whose whole decision has left Redis is still a duplicate: same answer, nothing counted again', async () => {
    const c = (ctx = testContext());
    const events = [
      charge('u-rec', '2026-03-10T10:00:00.000+08:00', 1_000),
      charge('u-rec', '2026-03-10T10:01:00.000+08:00', 2_000),
      // Third on the card within 10 minutes: review.
      charge('u-rec', '2026-03-10T10:02:00.000+08:00', 3_000),
    ];
    const first = await c.processor.process(testBatch(events), 'test:first');
    expect(first.map((r) => r.outcome)).toEqual(['approve', 'approve', 'review']);
    const state = async () => ({
      rules: await c.redis.hgetall(c.keys.ruleState('u-rec')),
      due: await dueCount(c),
      stats: await settlementStatsHash(c),
      stream: await decisionStreamLength(c.redis, c.keys),
    });
    const before = await state();
    // As the archiver leaves it: only the records.
    for (const e of events) expect(await c.redis.del(decisionKey(c.keys, 'u-rec', e.eventId))).toBe(1);

    const again = await c.processor.process(testBatch(events), 'test:again');
    expect(again).toEqual(first);
    expect(await state()).toEqual(before);
    const record = parseChargeRecord((await c.redis.hget(c.keys.charges('u-rec'), events[2]!.eventId))!);
    expect(record).toEqual({ outcome: 'review', amount: 3_000, settleAt: first[2]!.settleAt, localDate: '2026-03-10', creditCounted: false, rules: ['same_card_burst'] });
  });

  it('drops records older than retention.decisionDays at the weekly prune, keeps the rest, and expires the hash', async () => {
    const c = (ctx = testContext());
    const t0 = Date.parse('2026-03-10T02:00:00Z');
    const old = charge('u-prune', new Date(t0).toISOString());
    const recent = charge('u-prune', new Date(t0 + 20 * DAY).toISOString());
    await c.processor.process(testBatch([old]), 'test:old');
    await c.processor.process(testBatch([recent]), 'test:recent');
    expect(await c.redis.hlen(c.keys.charges('u-prune'))).toBe(2);
    // 36 days after the first: its record is past the 35 days, the second's is not.
    await c.processor.process(testBatch([charge('u-prune', new Date(t0 + 36 * DAY).toISOString())]), 'test:later');
    const records = await c.redis.hgetall(c.keys.charges('u-prune'));
    expect(Object.keys(records).sort()).toEqual([recent.eventId, `cr-${seq}`].sort());
    const ttl = await c.redis.ttl(c.keys.charges('u-prune'));
    expect(ttl).toBeGreaterThan(40 * 86_400);
    expect(ttl).toBeLessThanOrEqual(47 * 86_400);
  });

  it("keeps a user's records in one compact listpack", async () => {
    const c = (ctx = testContext());
    const start = Date.parse('2026-03-10T02:00:00Z');
    const events = Array.from({ length: 100 }, (_, i) => charge('u-many', new Date(start + i * 3_600_000).toISOString(), 100));
    await c.processor.process(testBatch(events), 'test:many');
    expect(await c.redis.hlen(c.keys.charges('u-many'))).toBe(100);
    expect(await c.redis.object('ENCODING', c.keys.charges('u-many'))).toBe('listpack');
    // About 40 bytes a charge: the eventId and a record of about 20 characters.
    expect(Number(await c.redis.call('MEMORY', 'USAGE', c.keys.charges('u-many')))).toBeLessThan(100 * 50);
  });
});

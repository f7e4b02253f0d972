/**
 * The charge record (src/decisions/charge-record.ts): what Redis keeps of a decided charge once its whole decision
 * has gone to the archive. It alone must keep a charge from being decided twice, expire with its generation, and
 * stay small.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import { testBatch } from '../helpers/batch.ts';
import { dropContext, testContext } from '../helpers/context.ts';
import { dueCount, settlementStatsHash } from '../helpers/settlement.ts';
import { decisionKey, decisionStreamLength } from '../helpers/shards.ts';

let ctx: Context | undefined;
afterEach(async () => {
  if (ctx) await dropContext(ctx);
  ctx = undefined;
});

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
    const record = await c.chargeRecords.get('u-rec', events[2]!.eventId, '2026-03-10');
    expect(record).toEqual({ outcome: 'review', amount: 3_000, settleAt: first[2]!.settleAt, localDate: '2026-03-10', creditCounted: false, rules: ['same_card_burst'], merchantId: 'm-1', userId: 'u-rec' });
  });

  it('refuses, never answers as a duplicate, a charge of another user whose eventId a record holds', async () => {
    const c = (ctx = testContext());
    const first = charge('u-one', '2026-03-10T10:00:00.000+08:00', 1_000, 'shared-id');
    await c.processor.process(testBatch([first]), 'test:one');
    // Past its claim (a claim window is shorter than a record's life), another user reuses the id in the same shard.
    const other = ['u-two', 'u-three', 'u-four', 'u-five', 'u-six'].find((u) => c.keys.shardOf(u) === c.keys.shardOf('u-one'))!;
    expect(other).toBeDefined();
    await c.redis.del(...(await c.redis.keys(`${c.keys.base}:id:*`)));
    const [r] = await c.processor.process(testBatch([{ ...first, userId: other }]), 'test:other');
    expect(r).toMatchObject({ eventId: 'shared-id', outcome: 'rejected', error: 'evaluation failed: an earlier charge of another user was decided with this eventId' });
    expect(await c.chargeRecords.get(other, 'shared-id', '2026-03-10')).toBeNull();
    expect(await dueCount(c)).toBe(1);
  });

  it('keeps a generation of records in small hashes per shard that expire as a whole after the retention', async () => {
    const c = (ctx = testContext());
    const start = Date.parse('2026-03-10T02:00:00Z');
    const events = Array.from({ length: 200 }, (_, i) => charge(`u-many-${i % 20}`, new Date(start + i * 60_000).toISOString(), 100));
    for (let i = 0; i < events.length; i += 20) await c.processor.process(testBatch(events.slice(i, i + 20)), `test:many-${i}`);
    const recordKeys = await c.redis.keys(`${c.keys.base}:{s*}:rec:*`);
    let records = 0;
    for (const key of recordKeys) {
      records += await c.redis.hlen(key);
      expect(await c.redis.object('ENCODING', key)).toBe('listpack');
      // Created with the generation's first charge: 7 days of local dates + the 35 days + a day.
      const ttl = await c.redis.ttl(key);
      expect(ttl).toBeGreaterThan(42 * 86_400);
      expect(ttl).toBeLessThanOrEqual(43 * 86_400);
    }
    expect(records).toBe(200);
    for (const e of events.slice(0, 5)) expect(await c.chargeRecords.get(e.userId, e.eventId, '2026-03-10')).toMatchObject({ outcome: 'approve', amount: 100, userId: e.userId });
    // No key per user or per charge for them.
    expect(await c.redis.keys(`${c.keys.base}:*charges*`)).toEqual([]);
  });
});

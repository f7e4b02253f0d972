/** The producer: shard routing, batching, strict order per shard, and no card number in any queued job. */
import { Queue } from 'bullmq';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import { syntheticCharges } from '../../src/events/synthetic.ts';
import { EventProducer } from '../../src/pipeline/producer.ts';
import { shardOf } from '../../src/pipeline/shards.ts';
import { riskQueueName } from '../../src/redis/keys.ts';
import { dropContext, testContext } from '../helpers/context.ts';

let ctx: Context;
beforeEach(() => {
  ctx = testContext({ pipeline: { shards: 4, maxBatch: 7, lingerMs: 0 } });
});
afterEach(async () => {
  await dropContext(ctx);
});

const open = (c = ctx) => EventProducer.open({ connection: c.queueConnection, keys: c.keys, cards: c.cards, pipeline: c.settings.config.pipeline });

async function queuedEvents(shard: number): Promise<Record<string, unknown>[]> {
  const q = new Queue(riskQueueName(shard), { connection: ctx.queueConnection, prefix: ctx.keys.queuePrefix });
  const jobs = (await q.getJobs(['wait'], 0, -1, true)).sort((a, b) => Number(a.id) - Number(b.id));
  await q.close();
  return jobs.flatMap((j) => j.data.events as Record<string, unknown>[]);
}

describe('EventProducer', () => {
  it('queues each user on its shard, in send order, carrying the card only as hash and last four', async () => {
    const producer = await open();
    const events = [...syntheticCharges({ count: 200, users: 20, seed: 11 })];
    events.forEach((e) => producer.send(e));
    await producer.close();

    for (let shard = 0; shard < 4; shard++) {
      const queued = await queuedEvents(shard);
      const expected = events.filter((e) => shardOf(e.userId, 4) === shard);
      expect(queued.map((e) => e.eventId)).toEqual(expected.map((e) => e.eventId));
      for (const [i, e] of queued.entries()) {
        expect(e.cardId).toBeUndefined();
        expect(e.cardToken).toBe(ctx.cards.token(expected[i]!.cardId));
        expect(e.cardLast4).toBe(`****${expected[i]!.cardId.slice(-4)}`);
      }
    }
    // Nothing anywhere in the namespace holds a card number.
    const keys = await ctx.redis.keys(`${ctx.keys.base}:*`);
    const dump = (await Promise.all(keys.map((k) => ctx.redis.dump(k)))).join('');
    for (const e of events.slice(0, 20)) expect(dump).not.toContain(e.cardId.slice(0, 12));
  });

  it('closes a batch at maxBatch events, the rest at flush (or after lingerMs)', async () => {
    await dropContext(ctx);
    ctx = testContext({ pipeline: { shards: 4, maxBatch: 7, lingerMs: 1_000 } });
    const producer = await open();
    const user = 'one-user';
    for (let i = 0; i < 15; i++) {
      producer.send({ type: 'charge', eventId: `b-${i}`, userId: user, merchantId: 'm', cardId: 'c-123456', amount: 1, occurredAt: '2026-03-10T10:00:00Z' });
    }
    await producer.flush();
    const q = new Queue(riskQueueName(shardOf(user, 4)), { connection: ctx.queueConnection, prefix: ctx.keys.queuePrefix });
    const jobs = (await q.getJobs(['wait'])).sort((a, b) => Number(a.id) - Number(b.id));
    await q.close();
    await producer.close();
    expect(jobs.map((j) => j.data.events.length)).toEqual([7, 7, 1]);
  });

  it('tokenized and raw charges of the same card share one window', async () => {
    const raw = { type: 'charge' as const, userId: 'u', merchantId: 'm', cardId: '6222021234567890128', amount: 100 };
    const { tokenizeCharge } = await import('../../src/events/card.ts');
    const results = await ctx.processor.process(
      {
        v: 1,
        enqueuedAt: Date.now(),
        events: [
          { ...raw, eventId: 't1', occurredAt: '2026-03-10T10:00:00Z' },
          tokenizeCharge({ ...raw, eventId: 't2', occurredAt: '2026-03-10T10:01:00Z' }, ctx.cards),
          tokenizeCharge({ ...raw, eventId: 't3', occurredAt: '2026-03-10T10:02:00Z' }, ctx.cards),
          { type: 'charge', eventId: 't4', userId: 'u', merchantId: 'm', amount: 1, occurredAt: '2026-03-10T10:02:00Z', cardToken: 'short', cardLast4: '****0128' },
        ],
      },
      'test:tok',
    );
    expect(results.map((r) => r.outcome)).toEqual(['approve', 'approve', 'review', 'rejected']);
    expect(results[3]!.error).toContain('cardToken must be the 16-character card hash');
  });
});

/** The producer: shard routing, batching, strict order per shard, and no card number in any queued job. */
import { claimHolder } from '../helpers/claims.ts';
import { Queue } from 'bullmq';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import { syntheticCharges } from '../../src/events/synthetic.ts';
import { EventProducer } from '../../src/pipeline/producer.ts';
import { shardOf } from '../../src/pipeline/shards.ts';
import { riskQueueName } from '../../src/redis/keys.ts';
import { testBatch } from '../helpers/batch.ts';
import { dropContext, testContext } from '../helpers/context.ts';

let ctx: Context;
beforeEach(() => {
  ctx = testContext({ pipeline: { shards: 4, maxBatch: 7, lingerMs: 0 } });
});
afterEach(async () => {
  await dropContext(ctx);
});

const open = (c = ctx) => c.openProducer({ clock: 'replay' });

async function queuedEvents(shard: number): Promise<Record<string, unknown>[]> {
  const q = new Queue(riskQueueName(shard), { connection: ctx.queueConnection, prefix: ctx.keys.queuePrefix(riskQueueName(shard)) });
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
    const q = new Queue(riskQueueName(shardOf(user, 4)), { connection: ctx.queueConnection, prefix: ctx.keys.queuePrefix(riskQueueName(shardOf(user, 4))) });
    const jobs = (await q.getJobs(['wait'])).sort((a, b) => Number(a.id) - Number(b.id));
    await q.close();
    await producer.close();
    expect(jobs.map((j) => j.data.events.length)).toEqual([7, 7, 1]);
  });

  it('tokenized and raw charges of the same card share one window', async () => {
    const raw = { type: 'charge' as const, userId: 'u', merchantId: 'm', cardId: '6222021234567890128', amount: 100 };
    const { tokenizeCharge } = await import('../../src/events/card.ts');
    const results = await ctx.processor.process(
      testBatch([
          { ...raw, eventId: 't1', occurredAt: '2026-03-10T10:00:00Z' },
          tokenizeCharge({ ...raw, eventId: 't2', occurredAt: '2026-03-10T10:01:00Z' }, ctx.cards),
          tokenizeCharge({ ...raw, eventId: 't3', occurredAt: '2026-03-10T10:02:00Z' }, ctx.cards),
          { type: 'charge', eventId: 't4', userId: 'u', merchantId: 'm', amount: 1, occurredAt: '2026-03-10T10:02:00Z', cardToken: 'short', cardLast4: '****0128' },
      ]),
      'test:tok',
    );
    expect(results.map((r) => r.outcome)).toEqual(['approve', 'approve', 'review', 'rejected']);
    expect(results[3]!.error).toContain('cardToken must be the 16-character card hash');
  });

  it('stamps each queued event with the clock it was accepted at, and marks the batch claimed', async () => {
    const clock = Date.parse('2026-03-10T12:00:00+08:00');
    const producer = await ctx.openProducer({ clock: () => clock });
    producer.send(charge('s-1', 'u-a', '2026-03-10T11:59:00+08:00'));
    await producer.close();
    const q = new Queue(riskQueueName(shardOf('u-a', 4)), { connection: ctx.queueConnection, prefix: ctx.keys.queuePrefix(riskQueueName(shardOf('u-a', 4))) });
    const [job] = await q.getJobs(['wait']);
    await q.close();
    expect(job!.data).toMatchObject({ v: 2, claimed: true, clock });
    expect(job!.data.clocks).toBeUndefined();
  });

  it('carries one clock per event when they differ (a replay clock moves with every event)', async () => {
    await dropContext(ctx);
    ctx = testContext({ pipeline: { shards: 4, maxBatch: 7, lingerMs: 1_000 } });
    const producer = await ctx.openProducer({ clock: 'replay' });
    producer.send(charge('c-1', 'u-a', '2026-03-10T11:00:00+08:00'));
    producer.send(charge('c-2', 'u-a', '2026-03-10T11:05:00+08:00'));
    await producer.close();
    const q = new Queue(riskQueueName(shardOf('u-a', 4)), { connection: ctx.queueConnection, prefix: ctx.keys.queuePrefix(riskQueueName(shardOf('u-a', 4))) });
    const jobs = (await q.getJobs(['wait'])).sort((a, b) => Number(a.id) - Number(b.id));
    await q.close();
    expect(jobs).toHaveLength(1);
    expect(jobs.flatMap((j) => j.data.clocks ?? [j.data.clock])).toEqual([Date.parse('2026-03-10T11:00:00+08:00'), Date.parse('2026-03-10T11:05:00+08:00')]);
  });

  it('refuses events outside [clock − maxAgeDays, clock + maxFutureSkewSeconds], dead-letters and counts them', async () => {
    const clock = Date.parse('2026-03-10T12:00:00+08:00');
    const rejected: string[] = [];
    const producer = await ctx.openProducer({ clock: () => clock, onRejected: (r) => rejected.push(`${r.tag}:${r.kind}:${r.reason}`) });
    producer.send(charge('ok-late', 'u-a', '2026-03-03T12:00:00+08:00'), 1); // exactly 7 days behind
    producer.send(charge('ok-ahead', 'u-a', '2026-03-10T12:05:00+08:00'), 2); // exactly 300 s ahead
    producer.send(charge('too-old', 'u-a', '2026-03-03T11:59:59+08:00'), 3);
    producer.send(charge('too-new', 'u-a', '2026-03-10T12:05:01+08:00'), 4);
    producer.send(charge('year-ahead', 'u-b', '2027-03-10T12:00:00+08:00'), 5);
    await producer.close();
    expect(rejected).toEqual([
      "3:event_time:occurredAt is 7 days behind the producer's clock 2026-03-10T04:00:00.000Z (at most 7 days)",
      "4:event_time:occurredAt is 5 min 1 s ahead of the producer's clock 2026-03-10T04:00:00.000Z (at most 5 min)",
      "5:event_time:occurredAt is 365 days ahead of the producer's clock 2026-03-10T04:00:00.000Z (at most 5 min)",
    ]);
    expect(producer.accepted).toBe(2);
    // Refused events claim nothing: their ids stay free.
    expect(await ctx.claims.held('too-old', clock)).toBeNull();
    expect(await ctx.claims.held('too-new', clock)).toBeNull();
    expect(await ctx.claims.held('ok-late', clock)).not.toBeNull();
    expect(await ctx.claims.held('ok-ahead', clock)).not.toBeNull();
    expect(await ctx.deadLetters.count()).toBe(3);
    expect(await ctx.redis.hgetall(ctx.keys.producerRejections)).toEqual({ event_time: '3' });
  });

  // Failed before contract v1.1: two users' events with one eventId landed on two shards and the winner was timing.
  it('claims eventIds in send order across shards: the first sent wins, whatever the batching', async () => {
    const users = ['u-a', 'u-b', 'u-c', 'u-d'].sort((a, b) => shardOf(a, 4) - shardOf(b, 4));
    expect(new Set(users.map((u) => shardOf(u, 4))).size).toBeGreaterThan(1);
    for (let round = 0; round < 3; round++) {
      const rejected: { tag: unknown; reason: string }[] = [];
      const producer = await ctx.openProducer({ clock: 'replay', onRejected: (r) => rejected.push(r) });
      // The same eventId from every user, in an order that differs per round; the linger differs per shard.
      const order = round === 1 ? [...users].reverse() : users;
      const sent = order.map((u, i) => charge(`shared-${round}`, u, `2026-03-10T10:0${i}:00+08:00`));
      sent.forEach((e, i) => producer.send(e, order[i]));
      await producer.close();
      expect(rejected.map((r) => r.tag)).toEqual(order.slice(1));
      expect(rejected[0]!.reason).toBe('eventId reused with other content: userId, occurredAt differ from the event first accepted with this eventId');
      expect((await claimHolder(ctx, sent, Date.parse('2026-03-10T10:00:00+08:00')))?.userId).toBe(order[0]);
    }
  });

  it('replay clock: the largest occurredAt accepted so far; a refused event does not move it', async () => {
    const rejected: unknown[] = [];
    const producer = await ctx.openProducer({ clock: 'replay', onRejected: (r) => rejected.push(r.tag) });
    producer.send(charge('r-1', 'u-a', '2026-03-10T10:00:00+08:00'), 1);
    await producer.flush();
    // Line 2 reuses r-1 nine days ahead (within the claim window): refused, so line 3 (a day later than line 1,
    // eight days behind line 2) is still accepted.
    producer.send(charge('r-1', 'u-a', '2026-03-19T10:00:00+08:00'), 2);
    producer.send(charge('r-3', 'u-a', '2026-03-11T10:00:00+08:00'), 3);
    // Line 4 moves the clock 20 days ahead: line 5 (back on 2026-03-11) is now too old.
    producer.send(charge('r-4', 'u-b', '2026-03-31T10:00:00+08:00'), 4);
    producer.send(charge('r-5', 'u-c', '2026-03-11T10:00:00+08:00'), 5);
    await producer.close();
    expect(rejected).toEqual([2, 5]);
    expect(producer.accepted).toBe(3);
  });

  it('replay: an event ahead of the wall clock is refused, and stamps no clock from the future', async () => {
    const rejected: string[] = [];
    const producer = await ctx.openProducer({ clock: 'replay', onRejected: (r) => rejected.push(`${r.tag}:${r.kind}`) });
    const soon = new Date(Date.now() + 60_000).toISOString();
    const later = new Date(Date.now() + 3_600_000).toISOString();
    producer.send(charge('now-ish', 'u-a', soon), 1);
    producer.send(charge('in-an-hour', 'u-a', later), 2);
    await producer.close();
    expect(rejected).toEqual(['2:event_time']);
    expect(producer.accepted).toBe(1);
    const [dead] = await ctx.deadLetters.list(10);
    expect(dead!.reason).toMatch(/^occurredAt is (1 h|59 min \d+ s) ahead of the wall clock .* \(at most 5 min\): a replay takes only events that have happened$/);
  });

  it('replay: a refused event that moved the clock leaves no claim behind; what follows decides as if it were absent', async () => {
    // Line 2 reuses r-1 ten days ahead. While the clock is on line 2, line 3 (a day after line 1) looks too old and
    // line 4 (same id as line 3, other user) would claim p-1; decided again with line 1's clock, line 3 claims
    // p-1 and line 4 is the conflict, as in a file without line 2.
    const lines = [
      charge('r-1', 'u-a', '2026-03-10T10:00:00+08:00'),
      charge('r-1', 'u-a', '2026-03-20T10:00:00+08:00'),
      charge('p-1', 'u-b', '2026-03-11T10:00:00+08:00'),
      charge('p-1', 'u-c', '2026-03-20T10:00:00+08:00'),
    ];
    const run = async (file: typeof lines, tags: number[]) => {
      await dropContext(ctx);
      ctx = testContext({ pipeline: { shards: 4, maxBatch: 7, lingerMs: 0 } });
      const rejected: unknown[] = [];
      const producer = await ctx.openProducer({ clock: 'replay', onRejected: (r) => rejected.push(r.tag) });
      // One claim round for the whole file: sent before the producer gets to claim any of it.
      file.forEach((e, i) => producer.send(e, tags[i]));
      await producer.close();
      return { rejected, claimOfP1: (await claimHolder(ctx, [lines[2]!, lines[3]!], Date.parse('2026-03-11T10:00:00+08:00')))?.userId };
    };
    const withLine2 = await run(lines, [1, 2, 3, 4]);
    const without = await run([lines[0]!, lines[2]!, lines[3]!], [1, 3, 4]);
    expect(without).toEqual({ rejected: [4], claimOfP1: 'u-b' });
    expect(withLine2).toEqual({ rejected: [2, 4], claimOfP1: 'u-b' });
  });
});

function charge(eventId: string, userId: string, occurredAt: string) {
  return { type: 'charge' as const, eventId, userId, merchantId: 'm-1', cardId: '6222021234567890128', amount: 100, occurredAt };
}

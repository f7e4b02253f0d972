/** Settlement: T+1 03:00 local, 48 h hold for review, never for decline; released exactly once per merchant ledger. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import type { ChargeEvent } from '../../src/events/schema.ts';
import { dropContext, testContext } from '../helpers/context.ts';
import { testBatch } from '../helpers/batch.ts';

let ctx: Context;
const charge = (eventId: string, over: Partial<ChargeEvent> = {}): ChargeEvent => ({
  type: 'charge',
  eventId,
  userId: `u-${eventId}`,
  merchantId: 'm-1',
  cardId: `card-${eventId}`,
  amount: 10_000,
  occurredAt: '2026-03-10T10:00:00+08:00',
  ...over,
});
const run = (events: unknown[]) => ctx.processor.process(testBatch(events), `test:${Math.random()}`);

beforeEach(() => {
  ctx = testContext();
});
afterEach(async () => {
  await dropContext(ctx);
});

describe('settlement schedule', () => {
  it('approve settles T+1 at 03:00 Shanghai; review is held 48 h more; decline never', async () => {
    const burst = (id: string, minute: number) => charge(id, { userId: 'burst', cardId: 'same', occurredAt: `2026-03-10T10:0${minute}:00+08:00` });
    const results = await run([
      charge('late-night', { occurredAt: '2026-03-10T22:59:59+08:00' }),
      charge('after-midnight', { occurredAt: '2026-03-11T00:00:00+08:00' }),
      burst('b1', 0),
      burst('b2', 1),
      burst('b3', 2),
      charge('night-large', { amount: 500_000, occurredAt: '2026-03-10T23:00:00+08:00' }),
    ]);
    expect(results.map((r) => [r.eventId, r.outcome, r.settleAt])).toEqual([
      ['late-night', 'approve', '2026-03-10T19:00:00.000Z'],
      ['after-midnight', 'approve', '2026-03-11T19:00:00.000Z'],
      ['b1', 'approve', '2026-03-10T19:00:00.000Z'],
      ['b2', 'approve', '2026-03-10T19:00:00.000Z'],
      ['b3', 'review', '2026-03-12T19:00:00.000Z'],
      ['night-large', 'decline', null],
    ]);
    const pending = await ctx.ledger.pending();
    expect(pending.map((p) => [p.eventId, p.status, p.settleAt])).toEqual([
      ['b1', 'scheduled', '2026-03-10T19:00:00.000Z'],
      ['b2', 'scheduled', '2026-03-10T19:00:00.000Z'],
      ['late-night', 'scheduled', '2026-03-10T19:00:00.000Z'],
      ['after-midnight', 'scheduled', '2026-03-11T19:00:00.000Z'],
      ['b3', 'held', '2026-03-12T19:00:00.000Z'],
    ]);
    expect(await ctx.ledger.stats()).toMatchObject({ scheduledCount: 4, scheduledAmount: 40_000, heldCount: 1, heldAmount: 10_000 });
  });
});

describe('release into the Fenfu ledger', () => {
  beforeEach(async () => {
    await run([
      charge('a1', { merchantId: 'm-a', amount: 100 }),
      charge('a2', { merchantId: 'm-a', amount: 250 }),
      charge('b1', { merchantId: 'm-b', amount: 1_000 }),
      charge('h1', { merchantId: 'm-a', amount: 5, userId: 'h', cardId: 'h' }),
      charge('h2', { merchantId: 'm-a', amount: 5, userId: 'h', cardId: 'h' }),
      charge('h3', { merchantId: 'm-a', amount: 5, userId: 'h', cardId: 'h' }),
      // In arrival order: a charge after these moves the clock past their T+1 only once it has arrived.
      charge('c1', { merchantId: 'm-c', amount: 7, occurredAt: '2026-03-11T09:00:00+08:00' }),
    ]);
  });

  it('settles nothing before its time and everything due exactly at its time', async () => {
    expect((await ctx.ledger.releaseDue(Date.parse('2026-03-10T18:59:59.999Z'))).settled).toBe(0);
    const r = await ctx.ledger.releaseDue(Date.parse('2026-03-10T19:00:00.000Z'));
    expect(r).toEqual({ settled: 5, settledAmount: 100 + 250 + 1_000 + 5 + 5, missingDecision: 0 });
    expect(await ctx.ledger.report('2026-03-11')).toEqual({
      date: '2026-03-11',
      merchants: [
        { merchantId: 'm-a', count: 4, amount: 360 },
        { merchantId: 'm-b', count: 1, amount: 1_000 },
      ],
      totalCount: 5,
      totalAmount: 1_360,
    });
    // The held one (third charge on card h) settles 48 h later, on its own settlement date.
    expect((await ctx.ledger.pending()).map((p) => [p.eventId, p.status])).toEqual([
      ['c1', 'scheduled'],
      ['h3', 'held'],
    ]);
    await ctx.ledger.releaseDue(Date.parse('2026-03-12T19:00:00.000Z'));
    expect((await ctx.ledger.report('2026-03-12')).merchants).toEqual([{ merchantId: 'm-c', count: 1, amount: 7 }]);
    expect((await ctx.ledger.report('2026-03-13')).merchants).toEqual([{ merchantId: 'm-a', count: 1, amount: 5 }]);
    expect(await ctx.ledger.stats()).toEqual({
      scheduledCount: 0,
      scheduledAmount: 0,
      heldCount: 0,
      heldAmount: 0,
      settledCount: 7,
      settledAmount: 1_372,
    });
  });

  it('records each transaction once even when releases race or repeat', async () => {
    const now = Date.parse('2026-03-20T00:00:00Z');
    const results = await Promise.all([ctx.ledger.releaseDue(now, 2), ctx.ledger.releaseDue(now, 3), ctx.ledger.releaseDue(now)]);
    expect(results.reduce((s, r) => s + r.settled, 0)).toBe(7);
    expect((await ctx.ledger.releaseDue(now)).settled).toBe(0);
    const all = await Promise.all(['2026-03-11', '2026-03-12', '2026-03-13'].map((d) => ctx.ledger.report(d)));
    expect(all.map((r) => r.totalCount)).toEqual([5, 1, 1]);
    expect(await ctx.redis.hlen(ctx.keys.ledgerEntries('2026-03-11'))).toBe(5);
  });

  it('keeps the Fenfu ledger under its own keys', async () => {
    await ctx.ledger.releaseDue(Date.parse('2026-03-20T00:00:00Z'));
    const ledgerKeys = (await ctx.redis.keys(`${ctx.keys.base}:fenfu:*`)).sort();
    expect(ledgerKeys).toEqual(
      [
        ctx.keys.ledgerDates,
        ctx.keys.ledger('2026-03-11'),
        ctx.keys.ledgerEntries('2026-03-11'),
        ctx.keys.ledger('2026-03-12'),
        ctx.keys.ledgerEntries('2026-03-12'),
        ctx.keys.ledger('2026-03-13'),
        ctx.keys.ledgerEntries('2026-03-13'),
      ].sort(),
    );
  });
});

/**
 * Settlement: T+1 03:00 local, 48 h hold for review, never for decline; a run at instant X pays everything due by X
 * into the ledger of X's local date, exactly once per eventId, forever (contract v1.1).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import type { Decision } from '../../src/decisions/decision.ts';
import type { ChargeEvent } from '../../src/events/schema.ts';
import { silentLogger } from '../../src/logger.ts';
import { Metrics } from '../../src/metrics.ts';
import { recordRelease, startSettlementWorker } from '../../src/settlement/settlement-worker.ts';
import { dropContext, testContext } from '../helpers/context.ts';
import { testBatch } from '../helpers/batch.ts';
import { dueCount, ledgerDates as allLedgerDates, ledgersExisting, scheduleDecision, settledOn } from '../helpers/settlement.ts';

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

describe('settlement never starts before the clock (contract v1.1)', () => {
  // Failed before v1.1: three charges on one card dated 4 days ago; the third was reviewed with a settleAt already
  // past, and the next settlement run paid it at once into the ledger of a date that had closed.
  it('a back-dated charge is paid at the clock, and a held one 48 h after it, into the date of the run', async () => {
    const clockMs = Date.parse('2026-03-14T15:30:00+08:00');
    const back = (id: string, minute: number) => charge(id, { userId: 'back', cardId: 'card-back', occurredAt: `2026-03-10T10:0${minute}:00+08:00` });
    const results = await ctx.processor.process(testBatch([back('k1', 0), back('k2', 1), back('k3', 2)], { clockMs }), 'test:back');
    expect(results.map((r) => [r.eventId, r.outcome, r.settleAt])).toEqual([
      ['k1', 'approve', '2026-03-14T07:30:00.000Z'],
      ['k2', 'approve', '2026-03-14T07:30:00.000Z'],
      ['k3', 'review', '2026-03-16T07:30:00.000Z'],
    ]);
    // The run at the clock pays the two approvals into that day's ledger, not into 2026-03-11's.
    const run = await ctx.ledger.releaseDue(clockMs);
    expect(run).toMatchObject({ settled: 2, settledAmount: 20_000 });
    expect(await ledgersExisting(ctx, '2026-03-11')).toBe(0);
    expect((await ctx.ledger.report('2026-03-14')).totalCount).toBe(2);
    // The held one waits its 48 hours from the decision.
    expect((await ctx.ledger.releaseDue(clockMs + 48 * 3_600_000 - 1)).settled).toBe(0);
    expect((await ctx.ledger.releaseDue(clockMs + 48 * 3_600_000)).settled).toBe(1);
    // Tier 1 (no volume in February): 0.60% and 0.10% of 10,000 fen.
    expect((await ctx.ledger.report('2026-03-16')).merchants).toEqual([{ merchantId: 'm-1', tier: 1, count: 1, grossFen: 10_000, baseFeeFen: 60, techFeeFen: 10, netFen: 9_930 }]);
  });

  it('an on-time approval still settles T+1 03:00 and lands on its T+1 date', async () => {
    const clockMs = Date.parse('2026-03-10T10:00:05+08:00');
    const [r] = await ctx.processor.process(testBatch([charge('on-time')], { clockMs }), 'test:on-time');
    expect(r!.settleAt).toBe('2026-03-10T19:00:00.000Z');
    await ctx.ledger.releaseDue(Date.parse('2026-03-11T03:00:05+08:00'));
    expect((await ctx.ledger.report('2026-03-11')).totalCount).toBe(1);
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
      // Last, in arrival order: a replay's clock (the largest occurredAt so far) would otherwise delay the others.
      charge('c1', { merchantId: 'm-c', amount: 7, occurredAt: '2026-03-11T09:00:00+08:00' }),
    ]);
  });

  it('settles nothing before its time and everything due exactly at its time', async () => {
    expect((await ctx.ledger.releaseDue(Date.parse('2026-03-10T18:59:59.999Z'))).settled).toBe(0);
    const r = await ctx.ledger.releaseDue(Date.parse('2026-03-10T19:00:00.000Z'));
    expect(r).toMatchObject({ date: '2026-03-11', settled: 5, settledAmount: 100 + 250 + 1_000 + 5 + 5, missingInfo: 0 });
    expect(await ctx.ledger.report('2026-03-11')).toMatchObject({
      date: '2026-03-11',
      merchants: [
        { merchantId: 'm-a', count: 4, grossFen: 360 },
        { merchantId: 'm-b', count: 1, grossFen: 1_000 },
      ],
      totalCount: 5,
      totalAmount: 1_360,
    });
    // The held one (third charge on card h) settles 48 h later, on its own settlement date.
    expect((await ctx.ledger.pending()).map((p) => [p.eventId, p.status])).toEqual([
      ['c1', 'scheduled'],
      ['h3', 'held'],
    ]);
    // Each released by a run at its own time (the worker's tick), so each lands on its own settlement date.
    await ctx.ledger.releaseDue(Date.parse('2026-03-11T19:00:00.000Z'));
    await ctx.ledger.releaseDue(Date.parse('2026-03-12T19:00:00.000Z'));
    expect((await ctx.ledger.report('2026-03-12')).merchants).toMatchObject([{ merchantId: 'm-c', count: 1, grossFen: 7 }]);
    expect((await ctx.ledger.report('2026-03-13')).merchants).toMatchObject([{ merchantId: 'm-a', count: 1, grossFen: 5 }]);
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
    expect((await ctx.ledger.report('2026-03-20')).totalCount).toBe(7);
    // settledOn throws on an eventId paid twice.
    expect(Object.values(await settledOn(ctx))).toEqual(Array(7).fill('2026-03-20'));
  });

  it('keeps the Fenfu ledger under its own keys', async () => {
    await ctx.ledger.releaseDue(Date.parse('2026-03-20T00:00:00Z'));
    // Each shard that settled something (the shards of the charges' users) has its own four, and nothing else does;
    // every shard has February closed (March's tiers were computed from it at this first release of March).
    const ledgerKeys = (await ctx.redis.keys(`${ctx.keys.base}:*fenfu:*`)).sort();
    const shards = [...new Set(['u-a1', 'u-a2', 'u-b1', 'h', 'u-c1'].map((u) => ctx.keys.shardOf(u)))];
    expect(shards.length).toBeGreaterThan(1);
    expect(ledgerKeys).toEqual(
      [
        ...shards.flatMap((s) => [ctx.keys.ledgerDates(s), ctx.keys.settlementLog(s), ctx.keys.ledger(s, '2026-03-20'), ctx.keys.merchantVolume(s, '2026-03')]),
        ...ctx.keys.shardIds.map((s) => ctx.keys.closedLedgerDates(s)),
      ].sort(),
    );
    for (const s of ctx.keys.shardIds) expect(await ctx.redis.smembers(ctx.keys.closedLedgerDates(s))).toEqual(['2026-02']);
    // The ledgers are kept: nothing under fenfu: expires (the log is trimmed by the archiver, below what it holds).
    for (const key of ledgerKeys) expect(await ctx.redis.ttl(key), key).toBe(-1);
    // What was paid leaves the schedule: no due entry, no settlement info.
    for (const s of shards) expect(await ctx.redis.exists(ctx.keys.settlementInfo(s), ctx.keys.settlementDue(s))).toBe(0);
  });
});

const schedule = (eventId: string, dueMs: number, over: Partial<Decision> = {}) => scheduleDecision(ctx, eventId, dueMs, over);
const ledgerDates = () => allLedgerDates(ctx);

describe('a run at instant X pays into the ledger of X\'s local date', () => {
  it('files a late release on the date it is really paid, not on the due dates', async () => {
    await schedule('on-11th', Date.parse('2026-03-10T19:00:00Z'), { merchantId: 'm-a', amount: 100 });
    await schedule('on-12th', Date.parse('2026-03-11T19:00:00Z'), { merchantId: 'm-a', amount: 20 });
    await schedule('held', Date.parse('2026-03-12T19:00:00Z'), { merchantId: 'm-b', amount: 3, outcome: 'review' });
    await schedule('not-yet', Date.parse('2026-03-14T19:00:00Z'), { merchantId: 'm-b', amount: 4_000 });
    // 2026-03-14 10:00 in Shanghai: three are due, all paid today.
    const r = await ctx.ledger.releaseDue(Date.parse('2026-03-14T02:00:00Z'));
    // Tier 1 (0.60%, 0.10%), each rounded half up: 100 → 1 and 0; 20 → 0.12 and 0.02; 3 → 0.018 and 0.003.
    expect(r).toEqual({ date: '2026-03-14', settled: 3, settledAmount: 123, missingInfo: 0, paid: [{ tier: 1, kind: 'charge', count: 3, grossFen: 123, baseFeeFen: 1, techFeeFen: 0, netFen: 122 }], closed: false, caseDeadlines: { autoReleased: 0, extended: 0, waiting: 0, decisionSeconds: [] } });
    expect(await ledgerDates()).toEqual(['2026-03-14']);
    expect(await ctx.ledger.report('2026-03-14')).toMatchObject({
      date: '2026-03-14',
      merchants: [
        { merchantId: 'm-a', count: 2, grossFen: 120 },
        { merchantId: 'm-b', count: 1, grossFen: 3 },
      ],
      totalCount: 3,
      totalAmount: 123,
    });
    for (const past of ['2026-03-11', '2026-03-12', '2026-03-13']) expect((await ctx.ledger.report(past)).totalCount, past).toBe(0);
    expect(await settledOn(ctx)).toEqual({ 'on-11th': '2026-03-14', 'on-12th': '2026-03-14', held: '2026-03-14' });
    expect((await ctx.ledger.pending()).map((p) => p.eventId)).toEqual(['not-yet']);
    expect(await ctx.ledger.stats()).toEqual({
      scheduledCount: 1,
      scheduledAmount: 4_000,
      heldCount: 0,
      heldAmount: 0,
      settledCount: 3,
      settledAmount: 123,
    });
  });

  it('pays a back-dated due score (1970-01-02) into the run\'s date, never a past ledger', async () => {
    await schedule('epoch', 86_400_000, { amount: 1 });
    await schedule('last-week', Date.parse('2026-03-03T19:00:00Z'), { amount: 2 });
    // 2026-03-11 04:00 Shanghai.
    const r = await ctx.ledger.releaseDue(Date.parse('2026-03-10T20:00:00Z'));
    expect(r).toMatchObject({ date: '2026-03-11', settled: 2, settledAmount: 3 });
    expect(await ledgerDates()).toEqual(['2026-03-11']);
    expect(await ledgersExisting(ctx, '1970-01-02', '2026-03-04')).toBe(0);
  });

  it('takes the local date in the configured zone at the run\'s instant (23:59:59 and 00:00:00 Shanghai)', async () => {
    await schedule('x', Date.parse('2026-03-01T00:00:00Z'));
    await schedule('y', Date.parse('2026-03-01T00:00:00Z'));
    expect((await ctx.ledger.releaseDue(Date.parse('2026-03-10T15:59:59Z'))).date).toBe('2026-03-10');
    await schedule('z', Date.parse('2026-03-01T00:00:00Z'));
    const r = await ctx.ledger.releaseDue(Date.parse('2026-03-10T16:00:00Z'));
    expect(r).toMatchObject({ date: '2026-03-11', settled: 1 });
    expect((await ctx.ledger.report('2026-03-10')).totalCount).toBe(2);
    expect((await ctx.ledger.report('2026-03-11')).totalCount).toBe(1);
  });

  it('refuses a run instant outside [2000, 2100) instead of inventing a ledger date', async () => {
    await schedule('a', Date.parse('2026-03-10T19:00:00Z'));
    await expect(ctx.ledger.releaseDue(Number.MAX_SAFE_INTEGER)).rejects.toThrow(RangeError);
    await expect(ctx.ledger.releaseDue(Date.parse('1999-12-31T23:59:59Z'))).rejects.toThrow(/\[2000-01-01, 2100-01-01\)/);
    await expect(ctx.ledger.releaseDue(Number.NaN)).rejects.toThrow(RangeError);
    expect(await dueCount(ctx)).toBe(1);
    expect(await ledgerDates()).toEqual([]);
  });
});

describe('exactly once per eventId', () => {
  it('leaves a due transaction without its settlement info unpaid, and says so', async () => {
    await schedule('A', Date.parse('2026-03-10T19:00:00Z'), { merchantId: 'm-a', amount: 49_000 });
    await schedule('B', Date.parse('2026-03-10T19:00:00Z'), { merchantId: 'm-a', amount: 5 });
    await ctx.redis.hdel(ctx.keys.settlementInfo(ctx.keys.shardOf('u-A')), 'A');
    const r = await ctx.ledger.releaseDue(Date.parse('2026-03-10T19:00:00Z'));
    expect(r).toMatchObject({ date: '2026-03-11', settled: 1, settledAmount: 5, missingInfo: 1 });
    expect(await dueCount(ctx)).toBe(1);
    expect(await settledOn(ctx)).toEqual({ B: '2026-03-11' });
  });

  it('pays once, fees and all, when racing releases see the same transactions', async () => {
    for (let i = 0; i < 20; i++) await schedule(`T${i}`, Date.parse('2026-03-10T19:00:00Z'), { amount: 7 + (i % 2) * 243, merchantId: `m-${i % 2}` });
    const now = Date.parse('2026-03-10T21:00:00Z');
    const results = await Promise.all([ctx.ledger.releaseDue(now, 3), ctx.ledger.releaseDue(now, 5), ctx.ledger.releaseDue(now)]);
    expect(results.reduce((s, r) => s + r.settled, 0)).toBe(20);
    // Ten of 7 fen (fees 0.042 and 0.007: none) and ten of 250 (1.5 → 2 and 0.25 → 0), each counted once.
    expect(await ctx.ledger.report('2026-03-11')).toMatchObject({
      totalCount: 20,
      totalAmount: 2_570,
      merchants: [
        { merchantId: 'm-0', tier: 1, count: 10, grossFen: 70, baseFeeFen: 0, techFeeFen: 0, netFen: 70 },
        { merchantId: 'm-1', tier: 1, count: 10, grossFen: 2_500, baseFeeFen: 20, techFeeFen: 0, netFen: 2_480 },
      ],
    });
    const paid = results.flatMap((r) => r.paid);
    expect([paid.reduce((t, p) => t + p.count, 0), paid.reduce((t, p) => t + p.baseFeeFen, 0), paid.reduce((t, p) => t + p.netFen, 0)]).toEqual([20, 20, 2_550]);
    expect(Object.keys(await settledOn(ctx))).toHaveLength(20);
  });

  it('a date closed while a release pays it: each transaction paid into it or still due, none after', async () => {
    for (let i = 0; i < 40; i++) await schedule(`C${i}`, Date.parse('2026-03-10T19:00:00Z'), { amount: 100 });
    const now = Date.parse('2026-03-10T21:00:00Z');
    const [released] = await Promise.all([ctx.ledger.releaseDue(now, 4), ctx.ledger.closeDate('2026-03-11')]);
    const report = await ctx.ledger.report('2026-03-11');
    expect(report.totalCount).toBe(released.settled);
    expect(report.totalCount + (await dueCount(ctx))).toBe(40);
    expect(await ctx.ledger.releaseDue(now + 60_000)).toMatchObject({ settled: 0, closed: true });
    expect((await ctx.ledger.report('2026-03-11')).totalCount).toBe(released.settled);
    // The next date takes the rest.
    expect((await ctx.ledger.releaseDue(Date.parse('2026-03-11T19:00:00Z'))).settled).toBe(40 - released.settled);
  });
});

describe('merchant fees in the ledger', () => {
  // Seed 002 via the issue: of a charge not yet paid, the merchant is paid the charge less the refund, with fees on
  // what is paid; a charge refunded in full before its payment is not paid at all.
  it('pays a charge refunded before its payment less the refund, fees on what is paid; one refunded in full not at all', async () => {
    const refund = (eventId: string, chargeId: string, userId: string, amount: number) => ({ type: 'refund', eventId, userId, chargeId, amount, occurredAt: '2026-03-10T12:00:00+08:00' });
    await run([charge('part', { merchantId: 'm-r', userId: 'u-part' }), charge('whole', { merchantId: 'm-r', userId: 'u-whole', amount: 5_000 }), charge('kept', { merchantId: 'm-r', userId: 'u-kept', amount: 250 })]);
    expect(await ctx.ledger.stats()).toMatchObject({ scheduledCount: 3, scheduledAmount: 15_250 });
    const refunds = await run([refund('rf-part', 'part', 'u-part', 4_000), refund('rf-whole-1', 'whole', 'u-whole', 2_000), refund('rf-whole-2', 'whole', 'u-whole', 3_000)]);
    expect(refunds.map((r) => r.outcome)).toEqual(['accepted', 'accepted', 'accepted']);
    expect(await ctx.ledger.stats()).toMatchObject({ scheduledCount: 2, scheduledAmount: 6_250 });
    expect(await dueCount(ctx)).toBe(2);
    const r = await ctx.ledger.releaseDue(Date.parse('2026-03-11T03:00:00+08:00'));
    expect(r).toMatchObject({ settled: 2, settledAmount: 6_250, missingInfo: 0 });
    // 6,000 at tier 1: 36 and 6; 250: 1.5 → 2 and 0.25 → 0.
    expect((await ctx.ledger.report('2026-03-11')).merchants).toEqual([{ merchantId: 'm-r', tier: 1, count: 2, grossFen: 6_250, baseFeeFen: 38, techFeeFen: 6, netFen: 6_206 }]);
    expect(await ctx.ledger.stats()).toMatchObject({ scheduledCount: 0, scheduledAmount: 0, settledCount: 2, settledAmount: 6_250 });
  });

  it('reverses a refund of a paid charge in the merchant\'s next ledger: negative gross and fees, the month\'s volume less; a day can be negative', async () => {
    const refund = (eventId: string, chargeId: string, userId: string, amount: number, occurredAt: string) => ({ type: 'refund', eventId, userId, chargeId, amount, occurredAt });
    // A merchant id with a space and a percent sign comes back exactly from the charge record.
    const shop = 'shop 7% off';
    await run([charge('paid', { merchantId: shop, userId: 'u-paid', amount: 10_000 })]);
    await ctx.ledger.releaseDue(Date.parse('2026-03-11T03:00:00+08:00'));
    // 10,000 paid on 11 March (60 and 10 in fees); 3 days later 7,000 of it is refunded, then 250 more.
    const results = await run([
      refund('rf-1', 'paid', 'u-paid', 7_000, '2026-03-14T09:00:00+08:00'),
      refund('rf-2', 'paid', 'u-paid', 250, '2026-03-14T09:30:00+08:00'),
    ]);
    expect(results.map((r) => r.outcome)).toEqual(['accepted', 'accepted']);
    expect((await ctx.ledger.pending()).map((p) => [p.eventId, p.merchantId, p.amount, p.status])).toEqual([
      ['rf-1', shop, 7_000, 'reversal'],
      ['rf-2', shop, 250, 'reversal'],
    ]);
    const r = await ctx.ledger.releaseDue(Date.parse('2026-03-15T03:00:00+08:00'));
    // Tier 1: 7,000 gives back 42 and 7; 250 gives back 2 (1.5 → 2) and 0 (0.25 → 0).
    expect(r).toMatchObject({ settled: 2, settledAmount: -7_250, paid: [{ tier: 1, kind: 'reversal', count: 2, grossFen: -7_250, baseFeeFen: -44, techFeeFen: -7, netFen: -7_199 }] });
    const day = await ctx.ledger.report('2026-03-15');
    expect(day.merchants).toEqual([{ merchantId: shop, tier: 1, count: 2, grossFen: -7_250, baseFeeFen: -44, techFeeFen: -7, netFen: -7_199 }]);
    // The month's volume is the charge less the reversals.
    const volume = await Promise.all(ctx.keys.shardIds.map((sh) => ctx.redis.hget(ctx.keys.merchantVolume(sh, '2026-03'), shop)));
    expect(volume.reduce((t, v) => t + Number(v ?? 0), 0)).toBe(2_750);
    // Once reversed, the refunded part is not refundable again, and nothing more is due.
    const [again] = await run([refund('rf-3', 'paid', 'u-paid', 2_751, '2026-03-15T09:00:00+08:00')]);
    expect(again).toMatchObject({ outcome: 'rejected' });
    expect(await dueCount(ctx)).toBe(0);
    // The metrics count what reversals gave back, under kind reversal (counters only rise).
    const metrics = new Metrics({ defaultMetrics: false });
    recordRelease(r, metrics, silentLogger);
    expect((await metrics.settlementNet.get()).values).toEqual([{ labels: { tier: '1', kind: 'reversal' }, value: 7_199 }]);
  });

  // Found in review: a refund that reused a paid charge's eventId (after its claim expired) left its reversal under
  // that id, and the next refund of the charge took it for the charge's unpaid settlement and deleted it.
  it('keeps a reversal filed under a reused id, and refuses a refund whose id names a settlement still due', async () => {
    const refund = (eventId: string, amount: number, occurredAt: string) => ({ type: 'refund', eventId, userId: 'u-c1', chargeId: 'c1', amount, occurredAt });
    // A merchant id with a tab, a line break and an ideographic space comes back from the record too.
    const shop = 'shop\tA\nB\u3000C';
    await run([charge('c1', { merchantId: shop, userId: 'u-c1', amount: 100 })]);
    await ctx.ledger.releaseDue(Date.parse('2026-03-11T03:00:00+08:00'));
    // Claimed as if by a producer: the claims (which would refuse the reused id within their window) are not asked.
    const claimed = (events: unknown[]) => ctx.processor.process(testBatch(events, { claimed: true }), `test:${Math.random()}`);
    expect((await claimed([refund('c1', 50, '2026-03-12T09:00:00+08:00')]))[0]).toMatchObject({ outcome: 'accepted' });
    expect((await claimed([refund('r-2', 50, '2026-03-12T09:10:00+08:00')]))[0]).toMatchObject({ outcome: 'accepted' });
    expect((await ctx.ledger.pending()).map((p) => [p.eventId, p.merchantId, p.amount, p.status])).toEqual([
      ['c1', shop, 50, 'reversal'],
      ['r-2', shop, 50, 'reversal'],
    ]);
    expect(await ctx.ledger.releaseDue(Date.parse('2026-03-13T03:00:00+08:00'))).toMatchObject({ settled: 2, settledAmount: -100 });
    // A refund of another charge whose own id names a settlement still due is refused, and changes nothing.
    await run([charge('c2', { userId: 'u-c1', merchantId: 'm-2', amount: 100 })]);
    const [reused] = await claimed([{ type: 'refund', eventId: 'c2', userId: 'u-c1', chargeId: 'c2', amount: 10, occurredAt: '2026-03-10T12:00:00+08:00' }]);
    expect(reused).toMatchObject({ outcome: 'accepted' }); // unpaid c2: paid 90, no reversal
    await ctx.ledger.releaseDue(Date.parse('2026-03-14T03:00:00+08:00'));
    await run([charge('c3', { userId: 'u-c1', merchantId: 'm-2', amount: 100, occurredAt: '2026-03-14T10:00:00+08:00' })]);
    const [clash] = await claimed([{ type: 'refund', eventId: 'c3', userId: 'u-c1', chargeId: 'c2', amount: 10, occurredAt: '2026-03-14T12:00:00+08:00' }]);
    expect(clash).toMatchObject({ outcome: 'rejected', error: 'refund c3 reuses the eventId of a settlement still due: send it with its own eventId' });
    expect((await ctx.ledger.pending()).map((p) => p.eventId)).toEqual(['c3']);
  });

  // A merchant's tier for a settlement date comes from what it was paid on dates of the calendar month before
  // (Shanghai), over every shard; fees are rounded half up per transaction. Hand-computed figures.
  it('tiers by last month: exactly 50,000,000 fen is tier 2, one fen less tier 1; a Shanghai month edge counts by local date', async () => {
    // March (Shanghai): m-big is paid exactly 50,000,000 fen over two users (two shards' volumes added), m-small one fen less.
    await schedule('big-1', Date.parse('2026-03-10T19:00:00Z'), { merchantId: 'm-big', amount: 30_000_000, userId: 'u-big-1' });
    await schedule('big-2', Date.parse('2026-03-10T19:00:00Z'), { merchantId: 'm-big', amount: 20_000_000, userId: 'u-big-2' });
    await schedule('small-1', Date.parse('2026-03-10T19:00:00Z'), { merchantId: 'm-small', amount: 49_999_999 });
    await ctx.ledger.releaseDue(Date.parse('2026-03-10T19:00:00Z'));
    // 2026-03-31T16:30Z is 2026-04-01 00:30 in Shanghai: paid into April, so it counts in April's volume, not March's.
    await schedule('edge', Date.parse('2026-03-31T16:00:00Z'), { merchantId: 'm-small', amount: 1 });
    const edge = await ctx.ledger.releaseDue(Date.parse('2026-03-31T16:30:00Z'));
    expect(edge.date).toBe('2026-04-01');
    expect(await ctx.ledger.tiers('2026-04')).toEqual(new Map([['m-big', 2], ['m-small', 1]]));
    const volume = async (month: string) => (await Promise.all(ctx.keys.shardIds.map((sh) => ctx.redis.hget(ctx.keys.merchantVolume(sh, month), 'm-small')))).reduce((t, v) => t + Number(v ?? 0), 0);
    expect([await volume('2026-03'), await volume('2026-04')]).toEqual([49_999_999, 1]);
    // April: 250 fen to each. Tier 2 (0.55%, 0.08%): 1.375 → 1 and 0.2 → 0; tier 1 (0.60%, 0.10%): 1.5 → 2 and 0.25 → 0.
    await schedule('apr-big', Date.parse('2026-04-09T19:00:00Z'), { merchantId: 'm-big', amount: 250 });
    await schedule('apr-small', Date.parse('2026-04-09T19:00:00Z'), { merchantId: 'm-small', amount: 250 });
    await schedule('apr-big-2', Date.parse('2026-04-09T19:00:00Z'), { merchantId: 'm-big', amount: 1_000_000, userId: 'u-big-3' });
    await ctx.ledger.releaseDue(Date.parse('2026-04-09T19:00:00Z'));
    expect((await ctx.ledger.report('2026-04-10')).merchants).toEqual([
      { merchantId: 'm-big', tier: 2, count: 2, grossFen: 1_000_250, baseFeeFen: 1 + 5_500, techFeeFen: 0 + 800, netFen: 1_000_250 - 5_501 - 800 },
      { merchantId: 'm-small', tier: 1, count: 1, grossFen: 250, baseFeeFen: 2, techFeeFen: 0, netFen: 248 },
    ]);
    // The settlement log carries each transaction's fees, for the archive and the reconciliation.
    const log = (await Promise.all(ctx.keys.shardIds.map((s) => ctx.redis.xrange(ctx.keys.settlementLog(s), '-', '+')))).flat();
    const aprSmall = log.find(([, f]) => f[1] === 'apr-small')![1];
    expect(Object.fromEntries(aprSmall.flatMap((v, i) => (i % 2 === 0 ? [[v, aprSmall[i + 1]]] : [])))).toMatchObject({ tier: '1', base: '2', tech: '0', net: '248' });
  });

  it('closes a month once the next month\'s tiers are computed from it: a release into it is refused', async () => {
    await schedule('a', Date.parse('2026-03-10T19:00:00Z'), { amount: 100 });
    await ctx.ledger.releaseDue(Date.parse('2026-04-01T01:00:00Z'));
    await schedule('b', Date.parse('2026-03-20T19:00:00Z'), { amount: 100 });
    await expect(ctx.ledger.releaseDue(Date.parse('2026-03-25T01:00:00Z'))).rejects.toThrow(/settlement date 2026-03-25 is in a closed month: the fee tiers of 2026-04 were computed from its volume/);
    expect(await dueCount(ctx)).toBe(1);
  });

  it("a release into a month racing the next month's tier computation: the tiers come from everything the month paid", async () => {
    // 40 × 1,250,000 = 50,000,000 to m-edge, over every shard: tier 2 in April only if all of it was paid in March.
    for (let i = 0; i < 40; i++) await schedule(`E${i}`, Date.parse('2026-03-30T19:00:00Z'), { merchantId: 'm-edge', amount: 1_250_000, userId: `u-edge-${i}` });
    const lateMarch = Date.parse('2026-03-31T15:59:00Z'); // 23:59 on 31 March in Shanghai
    const [release, tiers] = await Promise.all([ctx.ledger.releaseDue(lateMarch, 3), ctx.ledger.tiers('2026-04')]);
    const volume = (await Promise.all(ctx.keys.shardIds.map((sh) => ctx.redis.hget(ctx.keys.merchantVolume(sh, '2026-03'), 'm-edge')))).reduce((t, v) => t + Number(v ?? 0), 0);
    expect(volume).toBe(release.settledAmount);
    expect(tiers.get('m-edge') ?? 1).toBe(volume >= 50_000_000 ? 2 : 1);
    // What the close refused waits for April, and is paid there.
    expect(release.settled + (await dueCount(ctx))).toBe(40);
    expect((await ctx.ledger.releaseDue(Date.parse('2026-03-31T19:00:00Z'))).settled).toBe(40 - release.settled);
  });
});

describe('settlement worker', () => {
  it('releases on the wall clock into today\'s ledger and counts what it paid', async () => {
    // Due long ago; "done" was settled before.
    await schedule('done', Date.parse('2026-03-10T19:00:00Z'), { amount: 11 });
    await ctx.ledger.releaseDue(Date.parse('2026-03-10T19:00:00Z'));
    await schedule('fresh', Date.parse('2026-03-20T19:00:00Z'), { amount: 22 });

    const dayBefore = ctx.calendar.local(Date.now()).date;
    const worker = await startSettlementWorker({
      connection: ctx.queueConnection,
      keys: ctx.keys,
      settlement: { ...ctx.settings.config.settlement, tickSeconds: 1 },
      ledger: ctx.ledger,
      logger: silentLogger,
      metrics: ctx.metrics,
    });
    try {
      const deadline = Date.now() + 20_000;
      while ((await dueCount(ctx)) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    } finally {
      await worker.close();
    }
    const dayAfter = ctx.calendar.local(Date.now()).date;
    expect(await dueCount(ctx)).toBe(0);
    const paid = await settledOn(ctx);
    expect([dayBefore, dayAfter]).toContain(paid.fresh);
    expect(paid.done).toBe('2026-03-11');
    expect((await ctx.ledger.report(paid.fresh!)).totalAmount).toBe(22);
    const settled = (await ctx.metrics.registry.getSingleMetric('riskmon_settlements_settled_fen_total')!.get()).values;
    expect(settled[0]!.value).toBe(22);
  });
});

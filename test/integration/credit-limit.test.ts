/**
 * credit_limit on real Redis: every charge against the user's available credit (effective quota − outstanding),
 * repayments and refunds giving it back, calibrations and holiday uplifts changing it, and the quota paths an
 * attacker would try. Events go through the real processor; decisions are read back as stored.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import { parseDecision, type Decision } from '../../src/decisions/decision.ts';
import { Metrics } from '../../src/metrics.ts';
import { defineScript, loadScript } from '../../src/redis/scripts.ts';
import { testBatch } from '../helpers/batch.ts';
import { decisionKey } from '../helpers/shards.ts';
import { dropContext, testContext } from '../helpers/context.ts';
import { calibrate, calibrationWorker, charge, opened, repayment } from '../helpers/quota.ts';

type Json = Record<string, unknown>;
const contexts: Context[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  for (const c of contexts.splice(0)) await dropContext(c);
});

function context(overrides: Record<string, unknown> = {}): Context {
  const c = testContext(overrides);
  contexts.push(c);
  return c;
}

let seq = 0;
const refund = (userId: string, chargeId: string, amount: number, occurredAt: string, eventId = `refund-${++seq}`): Json => ({
  type: 'refund',
  eventId,
  userId,
  chargeId,
  amount,
  occurredAt,
});

/** One batch, in the order given; returns the per-event results. */
const process = (c: Context, events: Json[]) => c.processor.process(testBatch(events), `test:credit-${++seq}`);
const decision = async (c: Context, userId: string, eventId: string): Promise<Decision> => parseDecision((await c.redis.get(decisionKey(c.keys, userId, eventId)))!);
const credit = (c: Context, userId: string, at = '2026-03-10T12:00:00+08:00') => c.quotaAccounts.show(userId, c.calibrator, Date.parse(at));

const OPEN = '2026-03-10T09:00:00.000+08:00';

describe('credit_limit', () => {
  it('allows exactly the available amount and declines one fen more, naming quota, outstanding and available', async () => {
    const c = context();
    const a = charge('u-edge', '2026-03-10T10:00:00.000+08:00', 20_000);
    const over = charge('u-edge', '2026-03-10T10:30:00.000+08:00', 10_001);
    const exact = charge('u-edge', '2026-03-10T11:00:00.000+08:00', 10_000);
    const results = await process(c, [opened('u-edge', OPEN, 30_000, 'applied'), a, over, exact]);
    expect(results.map((r) => r.outcome)).toEqual(['accepted', 'approve', 'decline', 'approve']);
    const declined = await decision(c, 'u-edge', over.eventId as string);
    expect(declined.rules).toEqual(['credit_limit']);
    expect(declined.reasons).toEqual(['amount 100.01 CNY is more than the available credit 100.00 CNY: quota 300.00 CNY, outstanding 200.00 CNY']);
    expect(declined.observed.creditAvailable).toBe(10_000);
    expect((await decision(c, 'u-edge', exact.eventId as string)).observed.creditAvailable).toBe(10_000);
    // A declined charge adds nothing: neither to what is owed nor to the day total.
    expect(await credit(c, 'u-edge')).toMatchObject({ quota: 30_000, effectiveQuota: 30_000, outstanding: 30_000, available: 0 });
    expect(await c.redis.hget(c.keys.ruleState('u-edge'), '2026-03-10')).toBe('30000');
  });

  it('counts a held charge, and a repayment restores credit without an overpayment becoming credit', async () => {
    const c = context();
    // Three charges on one card in 10 minutes: the third is held for review, and still owed.
    const card = { cardId: '6222021234567890128' };
    const burst = [0, 1, 2].map((i) => ({ ...charge('u-held', `2026-03-10T10:0${i}:00.000+08:00`, 10_000), ...card }));
    const results = await process(c, [opened('u-held', OPEN, 30_000, 'applied'), ...burst, charge('u-held', '2026-03-10T10:30:00.000+08:00', 1)]);
    expect(results.map((r) => r.outcome)).toEqual(['accepted', 'approve', 'approve', 'review', 'decline']);
    expect((await credit(c, 'u-held')).outstanding).toBe(30_000);

    const repaid = await process(c, [repayment('u-held', '2026-03-20T00:00:00.000+08:00', '2026-03-10T11:00:00.000+08:00', 12_000), charge('u-held', '2026-03-10T11:10:00.000+08:00', 12_001)]);
    expect(repaid.map((r) => r.outcome)).toEqual(['accepted', 'decline']);
    expect(await credit(c, 'u-held')).toMatchObject({ outstanding: 18_000, available: 12_000 });

    // 500 CNY repaid of 180 CNY owed: nothing is owed, and the quota is all that is available.
    const over = await process(c, [repayment('u-held', '2026-03-20T00:00:00.000+08:00', '2026-03-10T11:20:00.000+08:00', 50_000), charge('u-held', '2026-03-10T11:30:00.000+08:00', 30_001)]);
    expect(over.map((r) => r.outcome)).toEqual(['accepted', 'decline']);
    expect(await credit(c, 'u-held')).toMatchObject({ outstanding: 0, available: 30_000 });
    // What each repayment paid down is on its record (calibration's bonus counts only that).
    const members = (await c.redis.zrange(c.keys.repayments('u-held'), 0, -1)).map((m) => JSON.parse(m) as unknown[]);
    expect(members.map((m) => m[4])).toEqual([12_000, 18_000]);
  });

  it('refunds give back what credit_limit counted, at most what is left of the charge, once per eventId', async () => {
    const c = context();
    const paid = charge('u-refund', '2026-03-10T10:00:00.000+08:00', 20_000);
    const declined = charge('u-refund', '2026-03-10T10:10:00.000+08:00', 20_000);
    await process(c, [opened('u-refund', OPEN, 30_000, 'applied'), paid, declined]);
    expect((await credit(c, 'u-refund')).available).toBe(10_000);
    // Archived, as the archiver leaves them: the whole decisions have left Redis, the refunds read the charge records.
    expect(await c.redis.del(decisionKey(c.keys, 'u-refund', paid.eventId as string), decisionKey(c.keys, 'u-refund', declined.eventId as string))).toBe(2);

    const first = refund('u-refund', paid.eventId as string, 15_000, '2026-03-10T11:00:00.000+08:00', 'rf-1');
    const results = await process(c, [
      first,
      first, // the same event again: a duplicate, nothing given back twice
      refund('u-refund', paid.eventId as string, 5_001, '2026-03-10T11:05:00.000+08:00'),
      refund('u-refund', declined.eventId as string, 100, '2026-03-10T11:06:00.000+08:00'),
      refund('u-refund', 'no-such-charge', 100, '2026-03-10T11:07:00.000+08:00'),
      refund('u-other', paid.eventId as string, 100, '2026-03-10T11:08:00.000+08:00'),
      refund('u-refund', paid.eventId as string, 5_000, '2026-03-10T11:09:00.000+08:00'),
    ]);
    expect(results.map((r) => [r.outcome, r.error])).toEqual([
      ['accepted', undefined],
      ['accepted', undefined],
      ['rejected', `refund of 5001 fen is more than what is left of charge ${paid.eventId} (5000 of its 20000 fen)`],
      ['rejected', `charge ${declined.eventId} was declined: there is nothing to refund`],
      ['rejected', 'no charge no-such-charge of user u-refund to refund: unknown, of another user, or decided more than 35 days ago'],
      // Another user's charge: its decision is looked for in the refund's user's shard only, so it is not found.
      ['rejected', `no charge ${paid.eventId} of user u-other to refund: unknown, of another user, or decided more than 35 days ago`],
      ['accepted', undefined],
    ]);
    expect(await credit(c, 'u-refund')).toMatchObject({ outstanding: 0, available: 30_000 });
    expect(await c.redis.hget(c.keys.refunds('u-refund'), paid.eventId as string)).toBe('20000');
    expect(await c.redis.exists(c.keys.refunds('u-other'), c.keys.account('u-other'))).toBe(0);
    const rejected = await c.metrics.eventsRejected.get();
    const count = (reason: string) => rejected.values.find((v) => v.labels.reason === reason)?.value ?? 0;
    expect([count('conflict'), count('unknown_charge')]).toEqual([2, 2]);
    // The refunds' credit came back to the totals too.
    for (const shard of c.keys.shardIds) expect(await c.redis.hget(c.keys.creditTotals(shard), 'owed'), `shard ${shard}`).toBeOneOf([null, '0']);
    expect(await c.redis.hget(c.keys.creditTotals(c.keys.shardOf('u-refund')), 'owed')).toBe('0');
  });

  // Found in review: five charges refunded in full met the frequent-use threshold with no credit used.
  // The record keeps its date as a day within its hash's generation: the refund script reads it back through the
  // generation's dates. Refundable for retention.decisionDays (35) from the charge's local date, not a day more.
  it('refunds a charge up to retention.decisionDays after its local date, and not a day later', async () => {
    const c = context();
    const kept = charge('u-age', '2026-03-01T23:30:00+08:00');
    const old = charge('u-age', '2026-03-01T23:40:00+08:00');
    await process(c, [kept, old]);
    const [inTime] = await process(c, [refund('u-age', String(kept.eventId), 100, '2026-04-05T08:00:00+08:00')]);
    const [tooLate] = await process(c, [refund('u-age', String(old.eventId), 100, '2026-04-06T00:00:00+08:00')]);
    expect([inTime!.outcome, tooLate!.outcome]).toEqual(['accepted', 'rejected']);
    expect(tooLate!.error).toMatch(/decided more than 35 days ago/);
  });

  it('a charge refunded in full no longer counts as a charge of its day; a partial refund keeps it', async () => {
    const c = context();
    const charges = [0, 1, 2].map((i) => charge('u-churn', `2026-03-10T1${i}:00:00.000+08:00`, 10_000));
    await process(c, [opened('u-churn', OPEN, 30_000, 'applied'), ...charges]);
    await process(c, [
      refund('u-churn', charges[0]!.eventId as string, 4_000, '2026-03-10T13:00:00.000+08:00'),
      refund('u-churn', charges[0]!.eventId as string, 6_000, '2026-03-10T13:01:00.000+08:00'),
      refund('u-churn', charges[1]!.eventId as string, 10_000, '2026-03-10T13:02:00.000+08:00'),
      refund('u-churn', charges[2]!.eventId as string, 9_999, '2026-03-10T13:03:00.000+08:00'),
    ]);
    expect(await c.redis.hget(c.keys.account('u-churn'), 'n:2026-03-10')).toBe('1');
    expect((await credit(c, 'u-churn')).outstanding).toBe(1);
  });

  it('a refund of a charge made before the account opened gives no credit back', async () => {
    const c = context();
    const early = charge('u-early-refund', '2026-03-10T08:00:00.000+08:00', 20_000);
    await process(c, [early, opened('u-early-refund', OPEN, 30_000, 'applied'), charge('u-early-refund', '2026-03-10T10:00:00.000+08:00', 30_000)]);
    const [r] = await process(c, [refund('u-early-refund', early.eventId as string, 20_000, '2026-03-10T11:00:00.000+08:00')]);
    expect(r!.outcome).toBe('accepted');
    expect(await credit(c, 'u-early-refund')).toMatchObject({ outstanding: 30_000, available: 0 });
  });

  it('does not check a user without an account unless asked to, and never counts a charge before the opening', async () => {
    const free = context();
    const [r] = await process(free, [charge('u-none', '2026-03-10T10:00:00.000+08:00', 4_000_000)]);
    expect(r!.outcome).toBe('approve');
    expect((await decision(free, 'u-none', r!.eventId!)).observed.creditAvailable).toBeNull();

    const strict = context({ rules: { creditLimit: { requireAccount: true } } });
    const before = charge('u-strict', '2026-03-10T08:59:59.999+08:00', 100);
    const sentLate = charge('u-strict', '2026-03-10T08:30:00.000+08:00', 100);
    const results = await process(strict, [charge('u-nobody', '2026-03-10T10:00:00.000+08:00', 100), before, opened('u-strict', OPEN, 30_000, 'applied'), sentLate, charge('u-strict', '2026-03-10T09:00:00.000+08:00', 30_000)]);
    expect(results.map((x) => x.outcome)).toEqual(['decline', 'decline', 'accepted', 'decline', 'approve']);
    expect((await decision(strict, 'u-nobody', results[0]!.eventId!)).reasons).toEqual(['no_credit_account: the user had no credit account open at 2026-03-10T10:00:00.000+08:00']);
    // The charge timed before the opening but sent after it counted nowhere: not owed, not a charge of the period.
    expect(await credit(strict, 'u-strict')).toMatchObject({ outstanding: 30_000, available: 0 });
    expect(await strict.redis.hget(strict.keys.account('u-strict'), 'n:2026-03-10')).toBe('1');
  });

  it('a calibration and a holiday uplift change the available amount between two charges', async () => {
    const c = context({ calibration: { holidayUplifts: [{ name: 'Qingming', from: '2026-04-03', to: '2026-04-06', percent: 20 }] } });
    const worker = await calibrationWorker(c);
    closers.push(() => worker.close());
    // Opened 2026-02-01 (applied, 1,000 CNY), 900 CNY charged: the 03-01 run finds it used and leaves 1,000 CNY.
    await process(c, [opened('u-cal', '2026-02-01T10:00:00.000+08:00', 100_000, 'applied'), charge('u-cal', '2026-02-20T10:00:00.000+08:00', 90_000)]);
    await calibrate(c, '2026-03-01');
    // 100 CNY repaid a day late (owed 800 CNY): 200 CNY is available, and spent exactly.
    const before = await process(c, [repayment('u-cal', '2026-03-05T00:00:00.000+08:00', '2026-03-06T10:00:00.000+08:00', 10_000), charge('u-cal', '2026-03-10T10:00:00.000+08:00', 20_000)]);
    expect(before.map((r) => r.outcome)).toEqual(['accepted', 'approve']);
    // The 03-15 run: the overdue repayment keeps 70%: 700 CNY, below the 1,000 CNY owed. Nothing is available.
    await calibrate(c, '2026-03-15');
    expect(await credit(c, 'u-cal', '2026-03-20T12:00:00+08:00')).toMatchObject({ quota: 70_000, outstanding: 100_000, available: 0 });
    const [after] = await process(c, [charge('u-cal', '2026-03-20T10:00:00.000+08:00', 1)]);
    expect(after!.outcome).toBe('decline');
    expect((await decision(c, 'u-cal', after!.eventId!)).reasons[0]).toBe('amount 0.01 CNY is more than the available credit 0.00 CNY: quota 700.00 CNY, outstanding 1000.00 CNY');
    // 400 CNY repaid (owed 600): 100 CNY available, but 240 CNY inside the uplift (+20%: 840 CNY).
    await process(c, [repayment('u-cal', '2026-04-01T00:00:00.000+08:00', '2026-03-25T10:00:00.000+08:00', 40_000)]);
    const [outside, inside, tooMuch] = await process(c, [
      charge('u-cal', '2026-04-02T23:00:00.000+08:00', 10_001),
      charge('u-cal', '2026-04-03T00:00:00.000+08:00', 24_000),
      charge('u-cal', '2026-04-05T12:00:00.000+08:00', 1),
    ]);
    expect([outside!.outcome, inside!.outcome, tooMuch!.outcome]).toEqual(['decline', 'approve', 'decline']);
    expect((await decision(c, 'u-cal', tooMuch!.eventId!)).reasons[0]).toBe('amount 0.01 CNY is more than the available credit 0.00 CNY: quota 840.00 CNY (700.00 CNY + 20% Qingming uplift), outstanding 840.00 CNY');
    expect(await credit(c, 'u-cal', '2026-04-04T12:00:00+08:00')).toMatchObject({ quota: 70_000, effectiveQuota: 84_000, outstanding: 84_000, available: 0 });
  });

  // Found in review: both spent past the limit. A charge dated just before the opening went unchecked, and one dated
  // back into an ended holiday window got its uplift.
  it('declines a charge dated before its account opened, and gives no uplift to one dated into an ended window', async () => {
    const c = context({ calibration: { holidayUplifts: [{ name: 'Qingming', from: '2026-03-10', to: '2026-03-11', percent: 50 }] } });
    await process(c, [opened('u-back', '2026-03-08T09:00:00.000+08:00', 100_000, 'applied'), charge('u-back', '2026-03-12T10:00:00.000+08:00', 100_000)]);
    const late = (events: Json[]) => c.processor.process({ ...testBatch(events), clocks: events.map(() => Date.parse('2026-03-13T10:00:00+08:00')) }, `test:credit-${++seq}`);
    const [before, intoEnded] = await late([charge('u-back', '2026-03-08T08:59:00.000+08:00', 1_000_000), charge('u-back', '2026-03-10T12:00:00.000+08:00', 50_000)]);
    expect([before!.outcome, intoEnded!.outcome]).toEqual(['decline', 'decline']);
    // (same_card_burst fires too: the card's newest charge is days later.)
    expect((await decision(c, 'u-back', before!.eventId!)).reasons).toContain(
      'the charge at 2026-03-08T08:59:00.000+08:00 is dated before the credit account opened (2026-03-08T09:00:00.000+08:00): it cannot be checked against the credit',
    );
    expect((await decision(c, 'u-back', intoEnded!.eventId!)).reasons).toContain('amount 500.00 CNY is more than the available credit 0.00 CNY: quota 1000.00 CNY, outstanding 1000.00 CNY');
    expect((await credit(c, 'u-back')).outstanding).toBe(100_000);
  });

  it('keeps the total outstanding over every account, for the gauge', async () => {
    const c = context();
    const a = charge('u-t1', '2026-03-10T10:00:00.000+08:00', 25_000);
    await process(c, [
      opened('u-t1', OPEN, 30_000, 'applied'),
      opened('u-t2', OPEN, 30_000, 'applied'),
      a,
      charge('u-t2', '2026-03-10T10:00:00.000+08:00', 7_000),
      charge('u-t2', '2026-03-10T10:05:00.000+08:00', 99_999), // declined: adds nothing
      charge('u-none', '2026-03-10T10:00:00.000+08:00', 5_000), // no account: not credit
      repayment('u-t2', '2026-03-20T00:00:00.000+08:00', '2026-03-10T11:00:00.000+08:00', 9_000),
      refund('u-t1', a.eventId as string, 4_000, '2026-03-10T11:00:00.000+08:00'),
    ]);
    const owed = (await credit(c, 'u-t1')).outstanding + (await credit(c, 'u-t2')).outstanding;
    expect(owed).toBe(21_000);
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.observe({ queues: [], redis: c.redis, keys: c.keys, settlementStats: () => c.ledger.stats(), caseCounts: (t) => c.cases.counts(t), build: { version: 'test', configVersion: 'test' } });
    expect((await metrics.creditOutstanding.get()).values.map((v) => v.value)).toEqual([owed]);
  });
});

describe('quota integrity', () => {
  it('rejects repayments and snapshots without an account, and those timed before the opening, with their reasons', async () => {
    const c = context();
    const results = await process(c, [
      repayment('u-q', '2026-03-10T00:00:00.000+08:00', '2026-03-09T00:00:00.000+08:00'),
      { type: 'asset_snapshot', eventId: 'as-1', userId: 'u-q', balance: 1, redeemed: 0, occurredAt: '2026-03-09T00:00:00.000+08:00' },
      opened('u-q', OPEN, 30_000, 'applied'),
      { type: 'social_snapshot', eventId: 'so-1', userId: 'u-q', friendsAdded: 99, momentsBlocked: false, occurredAt: '2026-03-10T08:00:00.000+08:00' },
      repayment('u-q', '2026-03-10T00:00:00.000+08:00', '2026-03-10T08:59:59.999+08:00'),
    ]);
    expect(results.map((r) => [r.outcome, r.error])).toEqual([
      ['rejected', 'no credit account is open for user u-q: its repayment does not count'],
      ['rejected', 'no credit account is open for user u-q: its asset snapshot does not count'],
      ['accepted', undefined],
      ['rejected', 'the social snapshot at 2026-03-10T08:00:00.000+08:00 is before the credit account opened (2026-03-10T09:00:00.000+08:00): it does not count'],
      ['rejected', 'the repayment at 2026-03-10T08:59:59.999+08:00 is before the credit account opened (2026-03-10T09:00:00.000+08:00): it does not count'],
    ]);
    expect(await c.deadLetters.count()).toBe(4);
    const rejected = await c.metrics.eventsRejected.get();
    const count = (reason: string) => rejected.values.find((v) => v.labels.reason === reason)?.value ?? 0;
    expect([count('no_credit_account'), count('before_opening')]).toEqual([2, 2]);
    expect(await c.redis.exists(c.keys.repayments('u-q'), c.keys.socialSnapshots('u-q'), c.keys.assetSnapshots('u-q'))).toBe(0);
  });

  it('counts events that arrive after their period was calibrated in the next run, once, and says so', async () => {
    const c = context();
    const worker = await calibrationWorker(c);
    closers.push(() => worker.close());
    await process(c, [opened('u-late', '2026-02-01T10:00:00.000+08:00', 1_000_000), charge('u-late', '2026-02-20T10:00:00.000+08:00', 100_000)]);
    await calibrate(c, '2026-03-01');
    // After the 03-01 run: 45 charges and an on-time repayment timed in its period [02-01, 03-01), sent late.
    const late = Array.from({ length: 45 }, (_, i) => charge('u-late', new Date(Date.parse('2026-02-25T00:00:00+08:00') + i * 3_600_000).toISOString(), 100));
    const lateRepayment = repayment('u-late', '2026-02-28T00:00:00.000+08:00', '2026-02-27T00:00:00.000+08:00', 50_000);
    await process(c, [...late, lateRepayment, charge('u-late', '2026-03-10T10:00:00.000+08:00', 100)]);
    await calibrate(c, '2026-03-15');
    await calibrate(c, '2026-04-01');
    const view = await credit(c, 'u-late', '2026-04-02T00:00:00+08:00');
    const [first, second, third] = view.history;
    expect(first!.late).toBeUndefined();
    // 03-15: P = [03-01, 03-15) holds 1 charge, plus the 45 late ones: 46 in 14 days ≥ 3 a day (+5%); the late
    // on-time repayment +200 CNY. 1,000,000 × 105 / 100 + 20,000 = 1,070,000
    expect(second).toMatchObject({ runId: '2026-03-15', after: 1_070_000, late: { charges: 45, events: [lateRepayment.eventId] } });
    expect(second!.factors.map((f) => f.factor)).toEqual(['frequent_use', 'on_time_repayment']);
    // 04-01: counted once: nothing late any more, and no charge in [03-17, 04-01): idle.
    expect(third!.late).toBeUndefined();
    expect(third!.factors.map((f) => f.factor)).toEqual(['idle']);
  });

  it('applies a calibration only to the state it read (a charge in between makes it compute again)', async () => {
    const c = context();
    await process(c, [opened('u-cas', '2026-02-01T10:00:00.000+08:00', 1_000_000)]);
    const [read] = await c.quotaAccounts.read(['u-cas']);
    await process(c, [charge('u-cas', '2026-02-20T10:00:00.000+08:00', 100)]);
    const apply = defineScript(c.redis, loadScript(new URL('../../src/quota/applyCalibration-6.lua', import.meta.url)));
    const k = c.keys;
    const reply = await apply(
      c.redis,
      [k.account('u-cas'), k.quotaAudit('u-cas'), k.calibrationRunCounts(k.shardOf('u-cas'), '2026-03-01'), k.repayments('u-cas'), k.assetSnapshots('u-cas'), k.socialSnapshots('u-cas')],
      ['2026-03-01', Date.parse('2026-03-01T00:00:00+08:00'), '', read!.account.quota, 900_000, 'down', '{}', 24, 0, read!.account.seq, '2026-02-14'],
    );
    expect(reply).toEqual([2]);
    expect((await credit(c, 'u-cas')).quota).toBe(1_000_000);
  });
});

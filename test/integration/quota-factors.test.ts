/**
 * Every calibration factor alone and in combination, band clamping, the overdue override, rounding and period
 * edges, against real Redis: events go through the real processor, the run through real chunk jobs.
 * Run D = 2026-03-15, R = 2026-03-15T00:00+08:00. "Old" accounts open at R − 15 days exactly (2026-02-28 00:00),
 * so P is 15 days and the idle rule may apply. Expected quotas are computed by hand in the comments.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import type { AccountView } from '../../src/quota/accounts.ts';
import type { RunStatus } from '../../src/quota/runs.ts';
import { dropContext, testContext } from '../helpers/context.ts';
import { assets, calibrate, calibrationWorker, charge, charges, feed, opened, repayment, social } from '../helpers/quota.ts';

const R = '2026-03-15T00:00:00.000+08:00';
const OLD = '2026-02-28T00:00:00.000+08:00';
/**
 * One 600 CNY charge early in the period: keeps an account from being idle, far from the frequency threshold, and
 * owes what three 200 CNY repayments pay down (a repayment counts only for what it pays down).
 */
const active = (u: string) => charge(u, '2026-03-01T08:00:00.000+08:00', 60_000);
/** Events a scenario expects to be refused: nothing from before the opening counts. */
const refused = new Set<string>();
const expectRefused = (e: Record<string, unknown>) => (refused.add(e.eventId as string), e);
const onTime = (u: string, day = '10', amount = 20_000) => repayment(u, `2026-03-${day}T00:00:00.000+08:00`, `2026-03-${day}T00:00:00.000+08:00`, amount);
const overdue = (u: string) => repayment(u, '2026-03-09T00:00:00.000+08:00', '2026-03-09T00:00:00.001+08:00');

interface Scenario {
  events: (u: string) => Record<string, unknown>[];
  after: number;
  factors: string[];
  warnings?: string[];
}

const scenarios: Record<string, Scenario> = {
  plain: { events: (u) => [opened(u, OLD), active(u)], after: 1_000_000, factors: [] },
  // 45 charges / 15 days = 3.0 a day ≥ 3 → +5%: 1,000,000 × 105 / 100 = 1,050,000
  'frequent use at exactly 3 a day': { events: (u) => [opened(u, OLD), ...charges(u, '2026-03-01T09:00:00.000+08:00', 45)], after: 1_050_000, factors: ['frequent_use'] },
  'frequent use one charge short': { events: (u) => [opened(u, OLD), ...charges(u, '2026-03-01T09:00:00.000+08:00', 44)], after: 1_000_000, factors: [] },
  // balance > 5,000,000 → +10%: 1,100,000
  'wealth balance above 50,000 CNY': { events: (u) => [opened(u, OLD), active(u), assets(u, '2026-03-10T10:00:00.000+08:00', 5_000_001)], after: 1_100_000, factors: ['wealth_balance'] },
  'wealth balance of exactly 50,000 CNY': { events: (u) => [opened(u, OLD), active(u), assets(u, '2026-03-10T10:00:00.000+08:00', 5_000_000)], after: 1_000_000, factors: [] },
  // Nothing from before the opening counts: the snapshot is refused (no account yet).
  'wealth snapshot from before the account opened': { events: (u) => [expectRefused(assets(u, '2026-02-20T10:00:00.000+08:00', 6_000_000)), opened(u, OLD), active(u)], after: 1_000_000, factors: [] },
  // The latest snapshot before R counts even when it is older than P.
  'wealth snapshot from an earlier period': { events: (u) => [opened(u, '2026-02-01T00:00:00.000+08:00'), assets(u, '2026-02-20T10:00:00.000+08:00', 6_000_000), active(u)], after: 1_100_000, factors: ['wealth_balance'] },
  'wealth superseded by a later small snapshot': {
    events: (u) => [opened(u, OLD), active(u), assets(u, '2026-03-05T10:00:00.000+08:00', 6_000_000), assets(u, '2026-03-12T10:00:00.000+08:00', 100_000)],
    after: 1_000_000,
    factors: [],
  },
  'wealth snapshot at exactly R belongs to the next period': {
    events: (u) => [opened(u, OLD), active(u), assets(u, '2026-03-05T10:00:00.000+08:00', 100), assets(u, R, 6_000_000)],
    after: 1_000_000,
    factors: [],
  },
  // 30 + 20 = 50 friends ≥ 50 → +5%
  'fifty new friends': { events: (u) => [opened(u, OLD), active(u), social(u, '2026-03-03T10:00:00.000+08:00', 30), social(u, '2026-03-12T10:00:00.000+08:00', 20)], after: 1_050_000, factors: ['new_friends'] },
  'forty-nine new friends': { events: (u) => [opened(u, OLD), active(u), social(u, '2026-03-03T10:00:00.000+08:00', 30), social(u, '2026-03-12T10:00:00.000+08:00', 19)], after: 1_000_000, factors: [] },
  'friends added before the opening do not count': {
    events: (u) => [expectRefused(social(u, '2026-02-27T23:59:59.999+08:00', 60)), opened(u, OLD), active(u), social(u, '2026-03-10T10:00:00.000+08:00', 0)],
    after: 1_000_000,
    factors: [],
  },
  // −5%: 950,000
  'moments blocked': { events: (u) => [opened(u, OLD), active(u), social(u, '2026-03-10T10:00:00.000+08:00', 0, true)], after: 950_000, factors: ['moments_blocked'] },
  'moments unblocked again': {
    events: (u) => [opened(u, OLD), active(u), social(u, '2026-03-05T10:00:00.000+08:00', 0, true), social(u, '2026-03-10T10:00:00.000+08:00', 0, false)],
    after: 1_000_000,
    factors: [],
  },
  // No charge in [Feb 28, Mar 15), opened exactly 15 days before R → −10%: 900,000
  idle: { events: (u) => [opened(u, OLD)], after: 900_000, factors: ['idle'] },
  'a charge at the first instant of the idle window': { events: (u) => [opened(u, OLD), charge(u, OLD)], after: 1_000_000, factors: [] },
  'a charge one millisecond before the idle window': {
    events: (u) => [charge(u, '2026-02-27T23:59:59.999+08:00'), opened(u, '2026-02-01T00:00:00.000+08:00')],
    after: 900_000,
    factors: ['idle'],
  },
  'idle but younger than 15 days by a millisecond': { events: (u) => [opened(u, '2026-02-28T00:00:00.001+08:00')], after: 1_000_000, factors: [] },
  'idle but opened 5 days ago': { events: (u) => [opened(u, '2026-03-10T00:00:00.000+08:00')], after: 1_000_000, factors: [] },
  // paidAt = dueAt is on time: +200 CNY
  'one repayment on time (paid at the due instant)': { events: (u) => [opened(u, OLD), active(u), onTime(u)], after: 1_020_000, factors: ['on_time_repayment'] },
  // 3 × 200 = 600 CNY, capped at 500 CNY
  'three repayments on time: bonus capped': { events: (u) => [opened(u, OLD), active(u), onTime(u, '03'), onTime(u, '06'), onTime(u, '09')], after: 1_050_000, factors: ['on_time_repayment'] },
  // Repayments count only for what they pay down of an outstanding balance.
  'a repayment when nothing is owed adds nothing': {
    events: (u) => [opened(u, OLD), onTime(u, '05'), charge(u, '2026-03-12T10:00:00.000+08:00')],
    after: 1_000_000,
    factors: [],
    warnings: ['repayment_without_debt'],
  },
  // Three 1-fen repayments with nothing owed once raised a 300 CNY account to 800 CNY.
  'three 1-fen repayments with nothing owed': {
    events: (u) => [opened(u, OLD, 30_000, 'applied'), onTime(u, '03', 1), onTime(u, '04', 1), onTime(u, '05', 1), charge(u, '2026-03-12T10:00:00.000+08:00')],
    after: 30_000,
    factors: [],
    warnings: ['repayment_without_debt'],
  },
  // 1 fen paid down earns 1 fen, not 200 CNY: 1,000,000 + 1
  'a 1-fen repayment of a balance earns 1 fen': { events: (u) => [opened(u, OLD), active(u), onTime(u, '10', 1)], after: 1_000_001, factors: ['on_time_repayment'] },
  // 1,000 CNY repaid of 600 CNY owed: it paid down 600 CNY, the full bonus
  'an overpayment counts what it paid down': { events: (u) => [opened(u, OLD), active(u), onTime(u, '10', 100_000)], after: 1_020_000, factors: ['on_time_repayment'] },
  // × 70 / 100: 700,000
  overdue: { events: (u) => [opened(u, OLD), active(u), overdue(u)], after: 700_000, factors: ['overdue_repayment'] },
  'overdue overrides every increase': {
    events: (u) => [
      opened(u, OLD),
      ...charges(u, '2026-03-01T09:00:00.000+08:00', 45),
      assets(u, '2026-03-10T10:00:00.000+08:00', 6_000_000),
      social(u, '2026-03-10T10:00:00.000+08:00', 50),
      onTime(u),
      overdue(u),
    ],
    after: 700_000,
    factors: ['overdue_repayment'],
  },
  // 999,999 × 70 = 69,999,930 / 100 = 699,999 (floor) → 699,900 (whole CNY)
  'overdue rounds down to whole CNY': { events: (u) => [opened(u, OLD, 999_999), active(u), overdue(u)], after: 699_900, factors: ['overdue_repayment'] },
  // 5 + 10 + 5 − 5 = 15%: 1,150,000, plus 2 × 20,000 = 1,190,000
  'everything at once': {
    events: (u) => [
      opened(u, OLD),
      ...charges(u, '2026-03-01T09:00:00.000+08:00', 45),
      assets(u, '2026-03-10T10:00:00.000+08:00', 6_000_000),
      social(u, '2026-03-10T10:00:00.000+08:00', 50, true),
      onTime(u, '05'),
      onTime(u, '10'),
    ],
    after: 1_190_000,
    factors: ['frequent_use', 'wealth_balance', 'new_friends', 'moments_blocked', 'on_time_repayment'],
  },
  // +10 − 10 = 0: unchanged, both explained
  'wealth and idle cancel out': { events: (u) => [opened(u, OLD), assets(u, '2026-03-10T10:00:00.000+08:00', 6_000_000)], after: 1_000_000, factors: ['wealth_balance', 'idle'] },
  // 1,234,567 × 105 = 129,629,535 / 100 = 1,296,295 → 1,296,200
  'percentages round down to whole CNY': { events: (u) => [opened(u, OLD, 1_234_567), ...charges(u, '2026-03-01T09:00:00.000+08:00', 45)], after: 1_296_200, factors: ['frequent_use'] },
  // 1,650,000 → invited maximum 1,500,000
  'invited band maximum': { events: (u) => [opened(u, OLD, 1_500_000), active(u), assets(u, '2026-03-10T10:00:00.000+08:00', 6_000_000)], after: 1_500_000, factors: ['wealth_balance', 'band_clamp'] },
  // 35,000 → invited minimum 50,000
  'invited band minimum': { events: (u) => [opened(u, OLD, 50_000), charge(u, '2026-03-01T08:00:00.000+08:00', 30_000), overdue(u)], after: 50_000, factors: ['overdue_repayment', 'band_clamp'] },
  // 800,000 + 40,000 → applied maximum 800,000
  'applied band maximum': { events: (u) => [opened(u, OLD, 800_000, 'applied'), active(u), onTime(u, '05'), onTime(u, '10')], after: 800_000, factors: ['on_time_repayment', 'band_clamp'] },
  // 27,000 → applied minimum 30,000
  'applied band minimum': { events: (u) => [opened(u, OLD, 30_000, 'applied')], after: 30_000, factors: ['idle', 'band_clamp'] },
  'applied account raised inside its band': { events: (u) => [opened(u, OLD, 500_000, 'applied'), active(u), social(u, '2026-03-10T10:00:00.000+08:00', 50)], after: 525_000, factors: ['new_friends'] },
  // redeemed 810,000 of 1,000,000 = 81% > 80%
  'redemption warning changes nothing': {
    events: (u) => [opened(u, OLD), active(u), assets(u, '2026-03-10T10:00:00.000+08:00', 190_000, 810_000)],
    after: 1_000_000,
    factors: [],
    warnings: ['asset_redemption'],
  },
  'redemption of exactly 80% does not warn': { events: (u) => [opened(u, OLD), active(u), assets(u, '2026-03-10T10:00:00.000+08:00', 200_000, 800_000)], after: 1_000_000, factors: [] },
  'a charge at exactly R belongs to the next period': { events: (u) => [opened(u, OLD), ...charges(u, '2026-03-01T09:00:00.000+08:00', 44), charge(u, R)], after: 1_000_000, factors: [] },
  'an overdue repayment paid at exactly R belongs to the next period': {
    events: (u) => [opened(u, OLD), active(u), onTime(u), repayment(u, '2026-03-10T00:00:00.000+08:00', R)],
    after: 1_020_000,
    factors: ['on_time_repayment'],
  },
  // P = 23 hours: the frequency factor needs a period of at least one day
  'ten charges in a period shorter than a day': { events: (u) => [opened(u, '2026-03-14T01:00:00.000+08:00'), ...charges(u, '2026-03-14T02:00:00.000+08:00', 10, 10)], after: 1_000_000, factors: [] },
  // P = exactly one day, 3 charges: 3 a day → +5%
  'three charges in a period of exactly one day': { events: (u) => [opened(u, '2026-03-14T00:00:00.000+08:00'), ...charges(u, '2026-03-14T02:00:00.000+08:00', 3)], after: 1_050_000, factors: ['frequent_use'] },
  // P = [Mar 13 12:00, R) = 1.5 days needs 4.5 charges; the 5 before the opening do not count, 4 after it are too few
  'charges before the opening do not count': {
    events: (u) => [...charges(u, '2026-03-13T08:00:00.000+08:00', 5, 10), opened(u, '2026-03-13T12:00:00.000+08:00'), ...charges(u, '2026-03-13T13:00:00.000+08:00', 4)],
    after: 1_000_000,
    factors: [],
  },
  'five charges after a mid-day opening are enough': {
    events: (u) => [...charges(u, '2026-03-13T08:00:00.000+08:00', 5, 10), opened(u, '2026-03-13T12:00:00.000+08:00'), ...charges(u, '2026-03-13T13:00:00.000+08:00', 5)],
    after: 1_050_000,
    factors: ['frequent_use'],
  },
};

const userOf = (name: string) => `u-${name.replace(/[^a-z0-9]+/gi, '-')}`;
const OPENED_AT_R = 'u-opened-at-R';

let context: Context;
let worker: Awaited<ReturnType<typeof calibrationWorker>>;
let run1: RunStatus;
let run2: RunStatus;
const views = new Map<string, AccountView>();
const viewsAfterRun2 = new Map<string, AccountView>();

beforeAll(async () => {
  context = testContext();
  worker = await calibrationWorker(context);
  await feed(context, [...Object.entries(scenarios).flatMap(([name, s]) => s.events(userOf(name))), opened(OPENED_AT_R, R)], refused);
  run1 = await calibrate(context, '2026-03-15');
  for (const name of [...Object.keys(scenarios)]) views.set(name, await context.quotaAccounts.show(userOf(name), context.calibrator));
  views.set(OPENED_AT_R, await context.quotaAccounts.show(OPENED_AT_R, context.calibrator));
  run2 = await calibrate(context, '2026-04-01');
  for (const u of [OPENED_AT_R, userOf('a charge at exactly R belongs to the next period'), userOf('an overdue repayment paid at exactly R belongs to the next period')]) {
    viewsAfterRun2.set(u, await context.quotaAccounts.show(u, context.calibrator));
  }
});

afterAll(async () => {
  await worker?.close();
  if (context) await dropContext(context);
});

describe('calibration factors (run 2026-03-15)', () => {
  for (const [name, s] of Object.entries(scenarios)) {
    it(name, () => {
      const view = views.get(name)!;
      expect(view.quota).toBe(s.after);
      expect(view.history).toHaveLength(1);
      const [record] = view.history;
      expect(record!.runId).toBe('2026-03-15');
      expect(record!.after).toBe(s.after);
      expect(record!.factors.map((f) => f.factor)).toEqual(s.factors);
      expect(record!.warnings.map((w) => w.warning)).toEqual(s.warnings ?? []);
    });
  }

  it('records before, after and a readable detail for every factor', () => {
    const [record] = views.get('everything at once')!.history;
    expect(record!.before).toBe(1_000_000);
    expect(record!.factors.map((f) => [f.factor, f.percent ?? f.bonusFen])).toEqual([
      ['frequent_use', 5],
      ['wealth_balance', 10],
      ['new_friends', 5],
      ['moments_blocked', -5],
      ['on_time_repayment', 40_000],
    ]);
    for (const f of record!.factors) expect(f.detail.length).toBeGreaterThan(10);
    expect(views.get('overdue')!.history[0]!.factors[0]!.percent).toBe(-30);
  });

  it('counts every account opened before R once, and none opened at R', () => {
    expect(run1.accounts).toBe(Object.keys(scenarios).length);
    expect(run1.calibrated).toBe(run1.accounts);
    expect(run1.up + run1.down + run1.unchanged).toBe(run1.calibrated);
    expect(run1.warnings).toBe(3);
    expect(views.get(OPENED_AT_R)!.history).toEqual([]);
    expect(run2.accounts).toBe(Object.keys(scenarios).length + 1);
  });

  it('counts calibrated accounts and warnings in the metrics', async () => {
    const accounts = await context.metrics.calibrationAccounts.get();
    const total = accounts.values.reduce((s, v) => s + v.value, 0);
    expect(total).toBe(run1.calibrated + run2.calibrated);
    const up = accounts.values.find((v) => v.labels.change === 'up')?.value ?? 0;
    expect(up).toBe(run1.up + run2.up);
    const warnings = await context.metrics.calibrationWarnings.get();
    expect(warnings.values.reduce((sum, v) => sum + v.value, 0)).toBe(run1.warnings + run2.warnings);
    expect(warnings.values.find((v) => v.labels.warning === 'asset_redemption')?.value).toBe(1);
    expect(warnings.values.find((v) => v.labels.warning === 'repayment_without_debt')?.value).toBe(2);
    const runs = await context.metrics.calibrationRuns.get();
    expect(runs.values.find((v) => v.labels.result === 'completed')?.value).toBe(2);
  });
});

describe('the next period (run 2026-04-01, R₂ = 2026-04-01T00:00+08:00)', () => {
  it('an account opened at exactly R joins the next run: P = [R, R₂), no charge since R₂ − 15 days → idle', () => {
    const view = viewsAfterRun2.get(OPENED_AT_R)!;
    expect(view.history.map((h) => [h.runId, h.before, h.after])).toEqual([['2026-04-01', 1_000_000, 900_000]]);
  });

  it('the charge at exactly R counted in the next period, which is idle from Mar 17 on', () => {
    const view = viewsAfterRun2.get(userOf('a charge at exactly R belongs to the next period'))!;
    // 1 charge in 17 days: no frequency; none in [Mar 17, Apr 1): idle −10% → 900,000
    expect(view.history.map((h) => [h.runId, h.after, h.factors.map((f) => f.factor)])).toEqual([
      ['2026-03-15', 1_000_000, []],
      ['2026-04-01', 900_000, ['idle']],
    ]);
  });

  it('the overdue repayment paid at exactly R lowers the quota in the next run', () => {
    const view = viewsAfterRun2.get(userOf('an overdue repayment paid at exactly R belongs to the next period'))!;
    // 1,020,000 × 70 / 100 = 714,000
    expect(view.history.map((h) => [h.runId, h.before, h.after, h.factors.map((f) => f.factor)])).toEqual([
      ['2026-03-15', 1_000_000, 1_020_000, ['on_time_repayment']],
      ['2026-04-01', 1_020_000, 714_000, ['overdue_repayment']],
    ]);
  });
});

/**
 * `npm run settlement -- release`: --now must be an ISO instant, never later than the wall clock (+ skew) but with
 * --allow-future, never in production. `report`: the JSON, or a table.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import { runTool } from '../helpers/cli.ts';
import { dropContext, redisUrl, testContext } from '../helpers/context.ts';
import { dueCount, ledgersExisting, scheduleDecision } from '../helpers/settlement.ts';
import { decisionKey } from '../helpers/shards.ts';
import { randomBytes } from 'node:crypto';

let ctx: Context;
const env = () => ({ REDIS_URL: redisUrl() });
const release = (...args: string[]) => runTool('settlement', ['release', '--namespace', ctx.keys.namespace, ...args], env());

beforeEach(async () => {
  ctx = testContext();
  await scheduleDecision(ctx, 'due-long-ago', Date.parse('2026-03-10T19:00:00Z'), { amount: 123 });
});
afterEach(async () => {
  await dropContext(ctx);
});

describe('settlement release --now', () => {
  it('pays what is due by a past instant into that instant\'s local date', async () => {
    const r = await release('--now', '2026-03-11T03:00:00+08:00');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      now: '2026-03-10T19:00:00.000Z',
      date: '2026-03-11',
      settled: 1,
      settledAmount: 123,
      missingInfo: 0,
      // 0.60% of 123 is 0.738 → 1, 0.10% is 0.123 → 0.
      paid: [{ tier: 1, kind: 'charge', count: 1, grossFen: 123, baseFeeFen: 1, techFeeFen: 0, netFen: 122 }],
      closed: false,
      // What open review cases got at their deadline (none here).
      caseDeadlines: { autoReleased: 0, extended: 0, waiting: 0 },
    });
    expect(await ctx.ledger.report('2026-03-11')).toMatchObject({ totalCount: 1, totalAmount: 123 });
  });

  it('rejects an instant that is not a strict ISO instant (usage error, nothing released)', async () => {
    for (const bad of ['tomorrow', '2026-03-11', '2026-02-30T10:00:00Z', '2026-03-11T03:00:00']) {
      const r = await release('--now', bad);
      expect(r.code, bad).toBe(2);
      expect(r.stderr, bad).toMatch(/^settlement: --now: /);
      expect(r.stderr, bad).toContain('usage: npm run settlement');
    }
    expect(await dueCount(ctx)).toBe(1);
  });

  it('refuses an instant later than the wall clock plus events.maxFutureSkewSeconds; allows one within it', async () => {
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const refused = await release('--now', future);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`--now ${future} is later than the wall clock`);
    expect(refused.stderr).toContain('moves money early');
    expect(await dueCount(ctx)).toBe(1);

    const nearly = new Date(Date.now() + 60_000).toISOString();
    const ok = await release('--now', nearly);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ date: ctx.calendar.local(Date.parse(nearly)).date, settled: 1 });
  });

  it('releases in the future only with --allow-future, which production refuses', async () => {
    const future = '2099-06-01T00:00:00Z';
    const production = await runTool('settlement', ['release', '--namespace', ctx.keys.namespace, '--now', future, '--allow-future'], {
      ...env(),
      RISKMON_ENV: 'production',
      // Made here, never written down: every secret in the repository is refused in production.
      RISKMON_CARD_SECRET: randomBytes(32).toString('base64'),
      RISKMON_DASHBOARD_USER: 'ops',
      RISKMON_DASHBOARD_PASSWORD: 'a-long-and-unguessable-passphrase-9f3k',
      DATABASE_URL: 'postgres://riskmon@127.0.0.1:1/unused',
    });
    expect(production.code).toBe(2);
    expect(production.stderr).toContain('--allow-future is refused in production');
    expect(await dueCount(ctx)).toBe(1);

    const r = await release('--now', future, '--allow-future');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ date: '2099-06-01', settled: 1 });
  });

  it('takes --now and --allow-future only with release', async () => {
    const r = await runTool('settlement', ['pending', '--namespace', ctx.keys.namespace, '--now', '2026-03-11T03:00:00+08:00'], env());
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--now and --allow-future belong to release');
  });
});

describe('settlement report', () => {
  const report = (...args: string[]) => runTool('settlement', ['report', '--namespace', ctx.keys.namespace, ...args], env());

  it('gives the date\'s merchants with tier, count, gross, fees and net: as JSON, and as a table with a total', async () => {
    await scheduleDecision(ctx, 'big', Date.parse('2026-03-10T19:00:00Z'), { amount: 1_000_050, merchantId: 'm-b', userId: 'u-b' });
    expect((await release('--now', '2026-03-11T03:00:00+08:00')).code).toBe(0);
    const json = await report('--date', '2026-03-11', '--json');
    expect(json.code, json.stderr).toBe(0);
    // Tier 1, 0.60% and 0.10%: 123 → 0.738 → 1 and 0.123 → 0; 1,000,050 → 6,000.3 → 6,000 and 1,000.05 → 1,000.
    expect(JSON.parse(json.stdout)).toEqual({
      date: '2026-03-11',
      merchants: [
        { merchantId: 'm-1', tier: 1, count: 1, grossFen: 123, baseFeeFen: 1, techFeeFen: 0, netFen: 122 },
        { merchantId: 'm-b', tier: 1, count: 1, grossFen: 1_000_050, baseFeeFen: 6_000, techFeeFen: 1_000, netFen: 993_050 },
      ],
    });
    const table = await report('--date', '2026-03-11');
    expect(table.stdout.split('\n').map((l) => l.replace(/\s+/g, ' ').trim())).toEqual([
      'Fenfu settlement of 2026-03-11 (fen)',
      'merchant tier count gross base fee tech fee net',
      'm-1 1 1 123 1 0 122',
      'm-b 1 1 1,000,050 6,000 1,000 993,050',
      'total 2 1,000,173 6,001 1,000 993,172',
      '',
    ]);
    expect((await report('--date', '2026-03-12')).stdout).toMatch(/^Fenfu settlement of 2026-03-12 \(fen\): nothing paid\n/);
    expect((await report('--date', '2026-03-11', '--now', '2026-03-11T03:00:00Z')).code).toBe(2);
    expect((await release('--json')).stderr).toMatch(/--json belongs to report/);
  });
});

describe('settlement merchant', () => {
  const merchant = (...args: string[]) => runTool('settlement', ['merchant', '--namespace', ctx.keys.namespace, ...args], env());

  it("gives a merchant's month: tier, volumes, what each date paid with its fees, and what is pending or held", async () => {
    await scheduleDecision(ctx, 'feb', Date.parse('2026-02-10T19:00:00Z'), { merchantId: 'm-s', amount: 1_000_000 });
    await ctx.ledger.releaseDue(Date.parse('2026-02-10T19:00:00Z'));
    await scheduleDecision(ctx, 'mar', Date.parse('2026-03-04T19:00:00Z'), { merchantId: 'm-s', amount: 20_000 });
    await scheduleDecision(ctx, 'held', Date.parse('2026-03-20T19:00:00Z'), { merchantId: 'm-s', amount: 3_000, outcome: 'review' });
    await scheduleDecision(ctx, 'other', Date.parse('2026-03-20T19:00:00Z'), { merchantId: 'm-other', amount: 9 });
    await ctx.ledger.releaseDue(Date.parse('2026-03-04T19:00:00Z'));
    const r = await merchant('m-s', '--month', '2026-03');
    expect(r.code, r.stderr).toBe(0);
    // 20,000 in tier 1 (February's 1,000,000 is below 50,000,000): 120 and 20.
    expect(JSON.parse(r.stdout)).toEqual({
      merchantId: 'm-s',
      month: '2026-03',
      tier: 1,
      tierComputed: true,
      previousMonthVolumeFen: 1_000_000,
      volumeFen: 20_000,
      paid: { count: 1, grossFen: 20_000, baseFeeFen: 120, techFeeFen: 20, netFen: 19_860 },
      days: [{ date: '2026-03-05', count: 1, grossFen: 20_000, baseFeeFen: 120, techFeeFen: 20, netFen: 19_860 }],
      pending: { scheduledCount: 0, scheduledFen: 0, heldCount: 1, heldFen: 3_000, reversalCount: 0, reversalFen: 0 },
    });
    // A month whose tiers are not computed yet: the tier the month before gives so far, and nothing is closed by asking.
    const april = JSON.parse((await merchant('m-s', '--month', '2026-04')).stdout);
    expect(april).toMatchObject({ tier: 1, tierComputed: false, previousMonthVolumeFen: 20_000, volumeFen: 0, days: [] });
    expect(await ctx.redis.hexists(ctx.keys.feeTiers('2026-04'), '\tcomputed')).toBe(0);
    expect((await merchant('m-s', '--month', '2026-13')).stderr).toMatch(/--month takes YYYY-MM/);
    expect((await merchant()).stderr).toMatch(/merchant needs a merchantId/);
  });
});

/**
 * Merchant fees and the daily reconciliation over three months (issue 16), on a real Redis and PostgreSQL: charges
 * decided by the rules, released by runs at 03:00 Shanghai, archived, and reconciled into files whose every figure
 * is computed by hand below. The report (the Redis ledger) equals the sum of the files; a date once reconciled takes
 * no more payments; a tampered archive is refused.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Archiver } from '../../src/archive/archiver.ts';
import type { Context } from '../../src/context.ts';
import type { ChargeEvent } from '../../src/events/schema.ts';
import { silentLogger } from '../../src/logger.ts';
import { Metrics } from '../../src/metrics.ts';
import { CSV_HEADER, fileSafe, reconcile, startDailyReconciliation, SUMMARY_HEADER } from '../../src/settlement/reconciliation.ts';
import { testBatch } from '../helpers/batch.ts';
import { runTool } from '../helpers/cli.ts';
import { dropContext, redisUrl, testContext } from '../helpers/context.ts';
import { openTestArchive, skipWithoutPostgres } from '../helpers/postgres.ts';

const skip = skipWithoutPostgres();
let archive: Awaited<ReturnType<typeof openTestArchive>>;
let ctx: Context;
let out: string;
let seq = 0;

beforeAll(async () => {
  if (skip) return;
  archive = await openTestArchive();
  // m-b has a negotiated 15 bp off the base rate: 0.45% in tier 1, under its floor of 0.50%, so 0.50%.
  ctx = testContext({ settlement: { fees: { merchantDiscountsBp: { 'm-b': 15 } } } });
  out = mkdtempSync(join(tmpdir(), 'riskmon-reconcile-'));
});
afterAll(async () => {
  if (skip) return;
  await dropContext(ctx);
  await archive.close();
  rmSync(out, { recursive: true, force: true });
});

const charge = (merchantId: string, amount: number, occurredAt: string, over: Partial<ChargeEvent> = {}): ChargeEvent => {
  const n = ++seq;
  return { type: 'charge', eventId: `c-${n}`, userId: `u-${n}`, merchantId, cardId: `card-${n}`, amount, occurredAt, ...over };
};
const decide = (events: ChargeEvent[]) => ctx.processor.process(testBatch(events), `test:${++seq}`);
/** The run at 03:00 Shanghai of `date`. */
const runOn = (date: string) => ctx.ledger.releaseDue(Date.parse(`${date}T03:00:00+08:00`));
const reconciled = (date: string) => {
  const archiver = new Archiver({ redis: ctx.redis, keys: ctx.keys, db: archive.db, logger: silentLogger });
  return reconcile(date, out, { ledger: ctx.ledger, db: archive.db, namespace: ctx.keys.namespace, archiveSettlements: () => archiver.catchUp('settlements'), today: '2026-12-03' });
};
const csvRows = (file: string) =>
  readFileSync(join(out, file), 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => l.split(','));

/** Each merchant's report figures equal the sums over its file's rows. */
async function expectReportEqualsFiles(date: string) {
  const report = await ctx.ledger.report(date);
  const fromFiles = report.merchants.map((m) => {
    const [head, ...rows] = csvRows(`fenfu-${fileSafe(m.merchantId)}-${date}.csv`);
    expect(head!.join(',')).toBe(CSV_HEADER);
    const sum = (col: number) => rows.reduce((t, r) => t + Number(r[col]), 0);
    return { merchantId: m.merchantId, tier: m.tier, count: rows.length, grossFen: sum(3), baseFeeFen: sum(4), techFeeFen: sum(5), netFen: sum(6) };
  });
  expect(fromFiles).toEqual(report.merchants);
}

describe.skipIf(skip)('three months of one namespace, fees by hand', () => {
  it('January: tier 1 for all; m-a ends the month with exactly 50,000,000 fen', async () => {
    // 20 users × 2,500,000 (each within the 5,000,000 daily cap) = 50,000,000 to m-a; one each to m-b and m-c.
    await decide([...Array.from({ length: 20 }, () => charge('m-a', 2_500_000, '2026-01-09T10:00:00+08:00')), charge('m-b', 12_345, '2026-01-09T10:00:00+08:00'), charge('m-c', 250, '2026-01-09T10:00:00+08:00')]);
    expect((await runOn('2026-01-10')).settled).toBe(22);
    const r = await reconciled('2026-01-10');
    // Tier 1 (0.60%, 0.10%), half up per transaction: 2,500,000 → 15,000 + 2,500; 12,345 at m-b's floor 0.50% →
    // 61.725 → 62, and 12.345 → 12; 250 → 1.5 → 2, and 0.25 → 0.
    expect(r.merchants.map(({ file: _f, sha256: _s, ...m }) => m)).toEqual([
      { merchantId: 'm-a', tier: 1, count: 20, grossFen: 50_000_000, baseFeeFen: 300_000, techFeeFen: 50_000, netFen: 49_650_000 },
      { merchantId: 'm-b', tier: 1, count: 1, grossFen: 12_345, baseFeeFen: 62, techFeeFen: 12, netFen: 12_271 },
      { merchantId: 'm-c', tier: 1, count: 1, grossFen: 250, baseFeeFen: 2, techFeeFen: 0, netFen: 248 },
    ]);
    await expectReportEqualsFiles('2026-01-10');
  });

  it('February: m-a is in tier 2; a charge held on 31 January is paid on 3 February, at February\'s tier', async () => {
    await decide([charge('m-a', 1_000_000, '2026-01-31T10:00:00+08:00'), charge('m-b', 10_000, '2026-01-31T10:00:00+08:00')]);
    // One card three times in 10 minutes: the third is held for review (48 h), then paid in February.
    const card = { userId: 'u-burst', cardId: 'card-burst' };
    await decide([charge('m-c', 1_000, '2026-01-31T22:00:00+08:00', card), charge('m-c', 1_000, '2026-01-31T22:04:00+08:00', card), charge('m-c', 7_777, '2026-01-31T22:08:00+08:00', card)]);
    const held = `c-${seq - 1}`;
    expect((await runOn('2026-02-01')).settled).toBe(4);
    expect(await ctx.ledger.tiers('2026-02')).toEqual(new Map([['m-a', 2], ['m-b', 1], ['m-c', 1]]));
    const feb1 = await reconciled('2026-02-01');
    // m-a, tier 2 (0.55%, 0.08%): 5,500 and 800. m-b at its floor: 50 and 10. m-c: 6 and 1, twice.
    const summary = csvRows('fenfu-summary-2026-02-01.csv');
    const sha = (file: string) => createHash('sha256').update(readFileSync(join(out, file))).digest('hex');
    expect(summary).toEqual([
      SUMMARY_HEADER.split(','),
      ['m-a', '2', '1', '1000000', '5500', '800', '993700', 'fenfu-m-a-2026-02-01.csv', sha('fenfu-m-a-2026-02-01.csv')],
      ['m-b', '1', '1', '10000', '50', '10', '9940', 'fenfu-m-b-2026-02-01.csv', sha('fenfu-m-b-2026-02-01.csv')],
      ['m-c', '1', '2', '2000', '12', '2', '1986', 'fenfu-m-c-2026-02-01.csv', sha('fenfu-m-c-2026-02-01.csv')],
    ]);
    expect(feb1.summary.sha256).toBe(sha('fenfu-summary-2026-02-01.csv'));
    await expectReportEqualsFiles('2026-02-01');

    // Closed: a run later that day pays nothing (the held charge is not due yet either way); after midnight, the
    // next date takes what falls due.
    expect(await ctx.ledger.releaseDue(Date.parse('2026-02-01T23:00:00+08:00'))).toMatchObject({ date: '2026-02-01', settled: 0, closed: true });
    expect(await runOn('2026-02-02')).toMatchObject({ settled: 0, closed: false });
    expect(await runOn('2026-02-03')).toMatchObject({ settled: 1, closed: false });
    await reconciled('2026-02-03');
    // 7,777 in tier 1: 46.662 → 47 and 7.777 → 8.
    expect(csvRows('fenfu-m-c-2026-02-03.csv')).toEqual([
      CSV_HEADER.split(','),
      [held, '2026-01-31T14:08:00.000Z', '2026-02-02T19:00:00.000Z', '7777', '47', '8', '7722', 'true', 'charge'],
    ]);
    await expectReportEqualsFiles('2026-02-03');
  });

  it('March: m-a back in tier 1 (1,000,000 fen in February), and a date reconciled again gives the same bytes', async () => {
    const march = charge('m-a', 3_000_000, '2026-03-04T10:00:00+08:00');
    await decide([march]);
    await runOn('2026-03-05');
    const first = await reconciled('2026-03-05');
    expect(first.merchants.map(({ file: _f, sha256: _s, ...m }) => m)).toEqual([{ merchantId: 'm-a', tier: 1, count: 1, grossFen: 3_000_000, baseFeeFen: 18_000, techFeeFen: 3_000, netFen: 2_979_000 }]);
    await expectReportEqualsFiles('2026-03-05');
    expect(await reconciled('2026-03-05')).toEqual(first);

    // A third of it refunded the next day: a reversal row in m-a's next ledger, negative, and the day's net too.
    await ctx.processor.process(testBatch([{ type: 'refund', eventId: 'rf-march', userId: march.userId, chargeId: march.eventId, amount: 1_000_000, occurredAt: '2026-03-06T10:00:00+08:00' }]), 'test:refund');
    await runOn('2026-03-07');
    const reversed = await reconciled('2026-03-07');
    expect(reversed.merchants.map(({ file: _f, sha256: _s, ...m }) => m)).toEqual([{ merchantId: 'm-a', tier: 1, count: 1, grossFen: -1_000_000, baseFeeFen: -6_000, techFeeFen: -1_000, netFen: -993_000 }]);
    expect(csvRows('fenfu-m-a-2026-03-07.csv')).toEqual([CSV_HEADER.split(','), ['rf-march', '2026-03-06T02:00:00.000Z', '2026-03-06T19:00:00.000Z', '-1000000', '-6000', '-1000', '-993000', 'false', 'reversal']]);
    await expectReportEqualsFiles('2026-03-07');
    // Every date reconciled has its files and nothing else was written.
    expect(readdirSync(out).filter((f) => f.startsWith('fenfu-summary-')).sort()).toEqual(['2026-01-10', '2026-02-01', '2026-02-03', '2026-03-05', '2026-03-07'].map((d) => `fenfu-summary-${d}.csv`));
    expect(readdirSync(out).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses, writing nothing, when the archive and the ledger disagree; refuses a date not yet paid', async () => {
    await archive.db.query(`UPDATE fenfu.settlements SET net_fen = net_fen - 1 WHERE namespace = $1 AND settlement_date = '2026-01-10' AND merchant_id = 'm-b'`, [ctx.keys.namespace]);
    rmSync(join(out, 'fenfu-summary-2026-01-10.csv'));
    await expect(reconciled('2026-01-10')).rejects.toThrow(/the archive does not match the ledger of 2026-01-10, no file written: "m-b": ledger 1 paid, gross 12345, fees 62 \+ 12, net 12271; archive 1 paid, gross 12345, fees 62 \+ 12, net 12270/);
    expect(readdirSync(out)).not.toContain('fenfu-summary-2026-01-10.csv');
    await expect(reconciled('2026-12-04')).rejects.toThrow(/settlement date 2026-12-04 is after today \(2026-12-03\)/);
    await expect(reconciled('2026-02-30')).rejects.toThrow(/must be a calendar date/);
  });
});

describe.skipIf(skip)('npm run settlement -- reconcile', () => {
  it('writes the files of a date from the archive at DATABASE_URL, and says what it wrote', async () => {
    const c = testContext();
    const dir = mkdtempSync(join(tmpdir(), 'riskmon-reconcile-cli-'));
    try {
      await c.processor.process(testBatch([charge('shop/../../x', 10_000, '2026-04-01T10:00:00+08:00')]), 'test:cli');
      await c.ledger.releaseDue(Date.parse('2026-04-02T03:00:00+08:00'));
      const r = await runTool('settlement', ['reconcile', '--namespace', c.keys.namespace, '--date', '2026-04-02', '--out', dir], { REDIS_URL: redisUrl(), DATABASE_URL: archive.url });
      expect(r.code, r.stderr).toBe(0);
      // The id cannot name a path: its slashes are encoded.
      expect(readdirSync(dir).sort()).toEqual(['fenfu-shop%2F..%2F..%2Fx-2026-04-02.csv', 'fenfu-summary-2026-04-02.csv']);
      expect(JSON.parse(r.stdout)).toMatchObject({ date: '2026-04-02', merchants: [{ merchantId: 'shop/../../x', tier: 1, count: 1, grossFen: 10_000, baseFeeFen: 60, techFeeFen: 10, netFen: 9_930 }] });
      expect(await c.ledger.isClosed('2026-04-02')).toBe(true);
      const usage = await runTool('settlement', ['reconcile', '--namespace', c.keys.namespace, '--date', '2026-04-02'], { REDIS_URL: redisUrl(), DATABASE_URL: archive.url });
      expect([usage.code, usage.stderr]).toEqual([2, expect.stringMatching(/reconcile needs --out <dir>/)]);
    } finally {
      await dropContext(c);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(skip)('the daily reconciliation job', () => {
  it('writes today\'s files once the local time passes settlement.reconciliation.time, once a day; a failure is retried an hour later', async () => {
    const c = testContext();
    const dir = mkdtempSync(join(tmpdir(), 'riskmon-reconcile-daily-'));
    const metrics = new Metrics({ defaultMetrics: false });
    let nowMs = Date.parse('2026-05-02T03:29:00+08:00');
    const archiver = new Archiver({ redis: c.redis, keys: c.keys, db: archive.db, logger: silentLogger });
    const job = startDailyReconciliation({
      ledger: c.ledger,
      db: archive.db,
      namespace: c.keys.namespace,
      archiveSettlements: () => archiver.catchUp('settlements'),
      calendar: c.calendar,
      secondOfDay: 3 * 3600 + 30 * 60,
      dir,
      logger: silentLogger,
      metrics,
      checkEveryMs: 3_600_000,
      now: () => nowMs,
    });
    const results = async () => Object.fromEntries((await metrics.reconciliations.get()).values.map((v) => [v.labels.result, v.value]));
    try {
      await c.processor.process(testBatch([charge('m-d', 10_000, '2026-05-01T10:00:00+08:00')]), 'test:daily');
      await c.ledger.releaseDue(Date.parse('2026-05-02T03:00:00+08:00'));
      await job.tick();
      expect(readdirSync(dir)).toEqual([]);
      nowMs = Date.parse('2026-05-02T03:31:00+08:00');
      await job.tick();
      expect(readdirSync(dir).sort()).toEqual(['fenfu-m-d-2026-05-02.csv', 'fenfu-summary-2026-05-02.csv']);
      expect(await c.ledger.isClosed('2026-05-02')).toBe(true);
      await job.tick();
      expect(await results()).toEqual({ written: 1 });

      // The next day, the archive disagrees with the ledger: not written, counted, tried again an hour later.
      await c.processor.process(testBatch([charge('m-d', 20_000, '2026-05-02T10:00:00+08:00')]), 'test:daily-2');
      await c.ledger.releaseDue(Date.parse('2026-05-03T03:00:00+08:00'));
      await archiver.catchUp('settlements');
      await archive.db.query(`UPDATE fenfu.settlements SET gross_fen = 1 WHERE namespace = $1 AND settlement_date = '2026-05-03'`, [c.keys.namespace]);
      nowMs = Date.parse('2026-05-03T04:00:00+08:00');
      await job.tick();
      nowMs += 30 * 60_000;
      await job.tick();
      expect(await results()).toEqual({ written: 1, failed: 1 });
      await archive.db.query(`UPDATE fenfu.settlements SET gross_fen = 20000 WHERE namespace = $1 AND settlement_date = '2026-05-03'`, [c.keys.namespace]);
      nowMs += 31 * 60_000;
      await job.tick();
      expect(await results()).toEqual({ written: 2, failed: 1 });
      expect(readdirSync(dir)).toContain('fenfu-summary-2026-05-03.csv');
    } finally {
      await job.stop();
      await dropContext(c);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('reconciliation file names', () => {
  it('are one to one: no path, no clash with the summary or between ids, never too long', () => {
    expect(fileSafe('m-1.a_b')).toBe('m-1.a_b');
    expect(fileSafe('shop/../../x')).toBe('shop%2F..%2F..%2Fx');
    // The summary's own name, and an id that spells its encoding, stay apart.
    expect([fileSafe('summary'), fileSafe('%73ummary')]).toEqual(['%73ummary', '%2573ummary']);
    // Long ids: cut, with a hash of the whole id; two that share the first 100 characters differ.
    const long = 'x'.repeat(128);
    expect(fileSafe(long)).toMatch(/^x{100}~[0-9a-f]{16}$/);
    expect(fileSafe(long)).not.toBe(fileSafe('x'.repeat(127) + 'y'));
    expect(fileSafe('商户'.repeat(20)).length).toBeLessThanOrEqual(117);
    // Validated ids are written as they are: two 15-digit merchant numbers that end alike keep their own files.
    expect(fileSafe('100000000001234')).not.toBe(fileSafe('200000000001234'));
  });
});


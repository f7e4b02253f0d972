/**
 * Calibration runs on real Redis and real BullMQ jobs: repeated and resumed runs apply nothing twice, earlier
 * dates are refused, the scheduler fires at 00:00 Asia/Shanghai on the 1st and 15th, holiday uplifts.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, getNextMillis } from 'bullmq';
import { DateTime } from 'luxon';
import { afterEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import { CALIBRATION_QUEUE } from '../../src/redis/keys.ts';
import { CALIBRATION_SCHEDULER_ID, startCalibrationWorker } from '../../src/quota/calibration-worker.ts';
import { CalibrationDateError } from '../../src/quota/calibration.ts';
import { CalibrationRefusedError, chunkJobId, scheduledStartDelay } from '../../src/quota/runs.ts';
import { runTool } from '../helpers/cli.ts';
import { dropContext, redisUrl, testContext } from '../helpers/context.ts';
import { calibrate, calibrationWorker, charge, feed, opened, repayment } from '../helpers/quota.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const contexts: Context[] = [];
const closers: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  for (const c of contexts.splice(0)) await dropContext(c);
});

function context(overrides: Record<string, unknown> = {}): Context {
  const c = testContext(overrides);
  contexts.push(c);
  return c;
}

async function worker(c: Context) {
  const w = await calibrationWorker(c);
  closers.push(() => w.close());
  return w;
}

/** `n` accounts opened 2026-02-01 with no activity: each run day they are idle (−10%). */
async function idleAccounts(c: Context, n: number): Promise<string[]> {
  const users = Array.from({ length: n }, (_, i) => `idle-${String(i).padStart(4, '0')}`);
  await feed(c, users.map((u) => opened(u, '2026-02-01T00:00:00.000+08:00', 1_000_000)));
  return users;
}

/**
 * The chunks of a run over `users`, as the layout numbers them (chunkPlace, src/quota/runs.ts): shard after shard,
 * each shard's accounts (all opened at one instant here, so in userId order) in chunks of `chunkSize`.
 */
function chunksOf(c: Context, users: string[], chunkSize: number): string[][] {
  const chunks: string[][] = [];
  for (const shard of c.keys.shardIds) {
    const mine = users.filter((u) => c.keys.shardOf(u) === shard).sort();
    for (let i = 0; i < mine.length; i += chunkSize) chunks.push(mine.slice(i, i + chunkSize));
  }
  return chunks;
}

async function historyLengths(c: Context, users: string[]): Promise<number[]> {
  const p = c.redis.pipeline();
  for (const u of users) p.llen(c.keys.quotaAudit(u));
  return ((await p.exec()) ?? []).map(([, n]) => n as number);
}

async function quotas(c: Context, users: string[]): Promise<number[]> {
  const p = c.redis.pipeline();
  for (const u of users) p.hget(c.keys.account(u), 'quota');
  return ((await p.exec()) ?? []).map(([, q]) => Number(q));
}

describe('repeated and resumed runs', () => {
  it('repeats a finished run without applying anything twice', async () => {
    const c = context({ calibration: { chunkSize: 5 } });
    const users = await idleAccounts(c, 12);
    await worker(c);
    // Chunks of 5 per shard: more than 12 / 5 when the accounts spread over the shards.
    const chunks = chunksOf(c, users, 5).length;
    expect(chunks).toBeGreaterThanOrEqual(3);
    const first = await calibrate(c, '2026-03-15');
    expect(first).toMatchObject({ status: 'done', accounts: 12, chunks, attempts: 1, calibrated: 12, down: 12, skipped: 0 });
    const again = await calibrate(c, '2026-03-15');
    expect(again).toMatchObject({ status: 'done', accounts: 12, chunks, attempts: 2, calibrated: 12, down: 12, skipped: 12 });
    expect(await quotas(c, users)).toEqual(users.map(() => 900_000));
    expect(await historyLengths(c, users)).toEqual(users.map(() => 1));
  });

  it('finishes a run whose pending chunk jobs were lost, by starting it again', async () => {
    const c = context({ calibration: { chunkSize: 5 } });
    const users = await idleAccounts(c, 12);
    const chunks = chunksOf(c, users, 5);
    const started = await c.calibration.start('2026-03-15');
    expect(started).toMatchObject({ status: 'running', chunks: chunks.length });
    // A worker did chunk 0, then everything died and the queue's pending jobs were lost.
    const done0 = chunks[0]!.length;
    expect(done0).toBeGreaterThan(0);
    expect(await c.calibration.processChunk('2026-03-15', 0)).toMatchObject({ accounts: done0, calibrated: done0 });
    const queue = new Queue(CALIBRATION_QUEUE, { connection: c.queueConnection, prefix: c.keys.queuePrefix(CALIBRATION_QUEUE) });
    await queue.drain(true);
    await queue.close();
    expect(await c.calibration.status('2026-03-15')).toMatchObject({ status: 'running', calibrated: done0 });

    await worker(c);
    const done = await calibrate(c, '2026-03-15');
    expect(done).toMatchObject({ status: 'done', attempts: 2, calibrated: 12, skipped: done0 });
    expect(await quotas(c, users)).toEqual(users.map(() => 900_000));
    expect(await historyLengths(c, users)).toEqual(users.map(() => 1));
  });

  it('finishes a run whose process was killed halfway (npm run calibrate, SIGKILL), applying each account once', async () => {
    // One account per chunk job, so the kill lands between (or inside) chunks; short locks so the chunk the
    // killed process held is redelivered quickly.
    const overrides = { calibration: { chunkSize: 1, concurrency: 1 }, pipeline: { lockDurationMs: 1_000, stalledIntervalMs: 500 } };
    const c = context(overrides);
    const users = await idleAccounts(c, 600);
    const dir = mkdtempSync(join(tmpdir(), 'riskmon-cal-'));
    closers.push(async () => rmSync(dir, { recursive: true, force: true }));
    const configFile = join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify(overrides));

    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'scripts/calibrate.ts', '--date', '2026-03-15', '--namespace', c.keys.namespace, '--config', configFile],
      { cwd: ROOT, env: { ...process.env, REDIS_URL: redisUrl(), LOG_LEVEL: 'silent' }, stdio: 'ignore' },
    );
    const exited = once(child, 'exit');
    for (;;) {
      const s = await c.calibration.status('2026-03-15');
      if ((s?.calibrated ?? 0) >= 50) break;
      if (child.exitCode !== null) throw new Error('calibrate exited before it could be killed');
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGKILL');
    await exited;
    const halfway = (await c.calibration.status('2026-03-15'))!;
    expect(halfway.status).toBe('running');
    expect(halfway.calibrated).toBeLessThan(600);

    await worker(c);
    const done = await calibrate(c, '2026-03-15');
    expect(done).toMatchObject({ status: 'done', attempts: 2, accounts: 600, calibrated: 600, down: 600 });
    expect(await quotas(c, users)).toEqual(users.map(() => 900_000));
    expect(await historyLengths(c, users)).toEqual(users.map(() => 1));
  });
  // Failed before: chunk jobs had one id per chunk. A job of the first attempt that had recorded its chunk done but
  // was not yet marked completed when the run was started again kept the restart from adding that chunk's job (the
  // restart had cleared the chunks done); once BullMQ removed the old job, nothing did the chunk again.
  it('finishes a run started again while a chunk job of the previous attempt was finishing', async () => {
    const c = context({ calibration: { chunkSize: 1 } });
    const users = await idleAccounts(c, 2);
    const first = await c.calibration.start('2026-03-15');
    expect(first).toMatchObject({ chunks: 2, attempts: 1 });
    // Attempt 1's job for chunk 0 has done its work (recorded done) and is still in the queue, not yet completed.
    await c.calibration.processChunk('2026-03-15', 0);
    const restarted = await c.calibration.start('2026-03-15');
    expect(restarted.attempts).toBe(2);
    // Now BullMQ marks the old job completed and removes it (removeOnComplete), without running it again.
    const queue = new Queue(CALIBRATION_QUEUE, { connection: c.queueConnection, prefix: c.keys.queuePrefix(CALIBRATION_QUEUE) });
    closers.push(() => queue.close());
    expect(await queue.remove(chunkJobId('2026-03-15', 1, 0))).toBe(1);
    await worker(c);
    const done = await Promise.race([
      c.calibration.waitUntilDone('2026-03-15', { pollMs: 20 }),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the run never finished')), 10_000)),
    ]);
    expect(done).toMatchObject({ status: 'done', calibrated: 2 });
    expect(await historyLengths(c, users)).toEqual([1, 1]);
  });
});

describe('attempts', () => {
  it('a chunk job of an earlier attempt that fails for good does not fail the attempt started since', async () => {
    const c = context();
    await idleAccounts(c, 2);
    await c.calibration.start('2026-03-15');
    await c.calibration.start('2026-03-15');
    await c.calibration.fail('2026-03-15', 'chunk 0: from attempt 1', 1);
    expect(await c.calibration.status('2026-03-15')).toMatchObject({ status: 'running', attempts: 2, error: null });
    await c.calibration.fail('2026-03-15', 'chunk 0: from attempt 2', 2);
    expect(await c.calibration.status('2026-03-15')).toMatchObject({ status: 'failed', error: 'chunk 0: from attempt 2' });
  });

  it('a scheduled run picked up before R by a lagging clock waits for R, within the allowed skew', () => {
    const R = Date.parse('2026-03-15T00:00:00+08:00');
    expect(scheduledStartDelay(R, R - 250, 300_000)).toBe(250);
    expect(scheduledStartDelay(R, R, 300_000)).toBe(0);
    expect(scheduledStartDelay(R, R + 5, 300_000)).toBe(0);
    // A clock further behind is a clock to fix: the start refuses the run and says so.
    expect(scheduledStartDelay(R, R - 300_001, 300_000)).toBe(0);
  });
});

describe('npm run calibrate', () => {
  it('gives up after --timeout, saying what is left and how to resume; a bad --timeout is a usage error', async () => {
    const c = context();
    const users = await idleAccounts(c, 3);
    // One chunk per shard that has accounts (the default chunk size, 1000, holds them all).
    const chunks = chunksOf(c, users, c.settings.config.calibration.chunkSize).length;
    // A paused queue: no worker takes the chunk jobs, so the run cannot finish.
    const queue = new Queue(CALIBRATION_QUEUE, { connection: c.queueConnection, prefix: c.keys.queuePrefix(CALIBRATION_QUEUE) });
    closers.push(() => queue.close());
    await queue.pause();
    const env = { REDIS_URL: redisUrl(), RISKMON_NAMESPACE: c.keys.namespace };
    const r = await runTool('calibrate', ['--date', '2026-03-15', '--timeout', '1'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `calibrate: calibration run 2026-03-15 (attempt 1) not done after 1 s: 0 of ${chunks} chunks done, 0 of 3 accounts calibrated; chunk jobs waiting ${chunks}, active 0, delayed (retrying) 0 (no worker is taking them: is a calibration worker running?). Nothing is lost: start the run again (npm run calibrate -- --date 2026-03-15) to resume it`,
    );
    // Once the queue runs again, starting it again finishes it.
    await queue.resume();
    const done = await runTool('calibrate', ['--date', '2026-03-15', '--timeout', '60'], env);
    expect(done.code).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({ status: 'done', attempts: 2, calibrated: 3 });
    const bad = await runTool('calibrate', ['--date', '2026-03-15', '--timeout', '0'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--timeout/);
  });
});

describe('failed runs', () => {
  it('a run marked failed (a chunk out of attempts) reports it, and starting it again finishes it', async () => {
    const c = context({ calibration: { chunkSize: 2 } });
    const users = await idleAccounts(c, 5);
    await c.calibration.start('2026-03-15');
    const chunk1 = chunksOf(c, users, 2)[1]!.length;
    expect(chunk1).toBeGreaterThan(0);
    expect(await c.calibration.processChunk('2026-03-15', 1)).toMatchObject({ accounts: chunk1, calibrated: chunk1 });
    await c.calibration.fail('2026-03-15', 'chunk 0: simulated');
    await expect(c.calibration.waitUntilDone('2026-03-15')).rejects.toThrow('calibration run 2026-03-15 failed: chunk 0: simulated; start it again to resume');
    const failed = (await c.metrics.calibrationRuns.get()).values.find((v) => v.labels.result === 'failed');
    expect(failed?.value).toBe(1);
    // Started again before a worker runs: attempt 1's waiting jobs are superseded by attempt 2's.
    await c.calibration.start('2026-03-15');
    await worker(c);
    expect(await c.calibration.waitUntilDone('2026-03-15', { pollMs: 20 })).toMatchObject({ status: 'done', attempts: 2, calibrated: 5, skipped: chunk1, error: null });
    expect(await historyLengths(c, users)).toEqual(users.map(() => 1));
  });
});

describe('run dates', () => {
  it('refuses a run for a date before the latest run, changing nothing', async () => {
    const c = context();
    const users = await idleAccounts(c, 3);
    await worker(c);
    await calibrate(c, '2026-04-01');
    await expect(c.calibration.start('2026-03-15')).rejects.toThrow(CalibrationRefusedError);
    await expect(c.calibration.start('2026-03-15')).rejects.toThrow('calibration run 2026-03-15 refused: the run of 2026-04-01 has already started');
    expect(await c.calibration.status('2026-03-15')).toBeNull();
    expect(await quotas(c, users)).toEqual([900_000, 900_000, 900_000]);
    const refused = (await c.metrics.calibrationRuns.get()).values.find((v) => v.labels.result === 'refused');
    expect(refused?.value).toBe(2);
  });

  // Failed before: --date 2099-01-01 calibrated every account (idle −10%), pruned their repayments, and as the latest
  // run blocked every real run until 2099.
  it('refuses a run whose instant R is still to come, changing nothing, so real runs still happen', async () => {
    const c = context();
    const users = await idleAccounts(c, 2);
    await feed(c, [repayment(users[0]!, '2026-02-20T00:00:00.000+08:00', '2026-02-10T00:00:00.000+08:00')]);
    await worker(c);
    // The next run day at least a day ahead (a fortnight's run is no better than 2099's).
    const soon = DateTime.now().setZone('Asia/Shanghai').plus({ days: 1 });
    const next = (soon.day <= 15 ? soon.set({ day: 15 }) : soon.plus({ months: 1 }).set({ day: 1 })).toISODate()!;
    for (const date of ['2099-01-01', next]) {
      await expect(c.calibration.start(date)).rejects.toThrow(CalibrationRefusedError);
      await expect(c.calibration.start(date)).rejects.toThrow(new RegExp(`^calibration run ${date} refused: its instant R \\(.+, 00:00 Asia/Shanghai on ${date}\\) is after now \\(.+\\); it may start from R on$`));
      expect(await c.calibration.status(date)).toBeNull();
    }
    expect(await c.redis.exists(c.keys.calibrationLatest)).toBe(0);
    expect(await c.redis.zcard(c.keys.repayments(users[0]!))).toBe(1);
    expect(await quotas(c, users)).toEqual([1_000_000, 1_000_000]);
    expect((await c.metrics.calibrationRuns.get()).values.find((v) => v.labels.result === 'refused')?.value).toBe(4);
    // A real run still happens.
    expect(await calibrate(c, '2026-03-01')).toMatchObject({ status: 'done', calibrated: 2 });
  });

  it('refuses, account by account, a stale chunk of an earlier run that comes after a later run', async () => {
    const c = context();
    const users = await idleAccounts(c, 3);
    await c.calibration.start('2026-03-15');
    const queue = new Queue(CALIBRATION_QUEUE, { connection: c.queueConnection, prefix: c.keys.queuePrefix(CALIBRATION_QUEUE) });
    await queue.drain(true);
    await queue.close();
    await worker(c);
    await calibrate(c, '2026-04-01');
    // The accounts were calibrated for 2026-04-01 (P = [opening, Apr 1)): one −10%.
    expect(await quotas(c, users)).toEqual([900_000, 900_000, 900_000]);
    // Every chunk of the earlier run (one per shard that has accounts), added up.
    const staleChunks = (await c.calibration.status('2026-03-15'))!.chunks;
    expect(staleChunks).toBe(chunksOf(c, users, c.settings.config.calibration.chunkSize).length);
    const stale = { accounts: 0, calibrated: 0, refused: 0 };
    for (let index = 0; index < staleChunks; index++) {
      const r = await c.calibration.processChunk('2026-03-15', index);
      stale.accounts += r.accounts;
      stale.calibrated += r.calibrated;
      stale.refused += r.refused;
    }
    expect(stale).toEqual({ accounts: 3, calibrated: 0, refused: 3 });
    expect(await quotas(c, users)).toEqual([900_000, 900_000, 900_000]);
    expect(await historyLengths(c, users)).toEqual([1, 1, 1]);
  });

  it('accepts only the configured run days', async () => {
    const c = context();
    await expect(c.calibration.start('2026-03-02')).rejects.toThrow(CalibrationDateError);
    await expect(c.calibration.start('2026-03-02')).rejects.toThrow('runs happen on day 1 or 15 of a month; 2026-03-02 is not one');
    await expect(c.calibration.start('2026-02-30')).rejects.toThrow('run date must be a calendar date YYYY-MM-DD, got "2026-02-30"');
    await expect(c.calibration.start('15/03/2026')).rejects.toThrow(CalibrationDateError);
  });

  it('completes a run with no accounts at once', async () => {
    const c = context();
    expect(await c.calibration.start('2026-03-15')).toMatchObject({ status: 'done', accounts: 0, chunks: 0 });
  });
});

describe('scheduler', () => {
  const shanghai = (iso: string) => DateTime.fromISO(iso, { zone: 'Asia/Shanghai' }).toMillis();

  it('installs a cron "0 0 1,15 * *" in Asia/Shanghai whose next run is 00:00 local on the next 1st or 15th', async () => {
    const c = context();
    const before = Date.now();
    const w = await startCalibrationWorker({
      connection: c.queueConnection,
      keys: c.keys,
      config: c.settings.config,
      calibrator: c.calibrator,
      calibration: c.calibration,
      logger: c.logger,
      metrics: c.metrics,
    });
    closers.push(() => w.close());
    const queue = new Queue(CALIBRATION_QUEUE, { connection: c.queueConnection, prefix: c.keys.queuePrefix(CALIBRATION_QUEUE) });
    closers.push(() => queue.close());
    const scheduler = await queue.getJobScheduler(CALIBRATION_SCHEDULER_ID);
    expect(scheduler).toMatchObject({ pattern: '0 0 1,15 * *', tz: 'Asia/Shanghai' });

    // The next 1st or 15th at 00:00 in Shanghai after now, found by walking local days.
    let day = DateTime.fromMillis(before, { zone: 'Asia/Shanghai' }).startOf('day');
    while (!((day.day === 1 || day.day === 15) && day.toMillis() > before)) day = day.plus({ days: 1 });
    expect(scheduler!.next).toBe(day.toMillis());
    const delayed = await queue.getJob(`repeat:${CALIBRATION_SCHEDULER_ID}:${day.toMillis()}`);
    expect(delayed?.name).toBe('run');
  });

  it('computes next instants at local midnight, not UTC midnight', () => {
    const opts = { pattern: '0 0 1,15 * *', tz: 'Asia/Shanghai' };
    // 2026-03-10 20:00 Shanghai → 2026-03-15 00:00 Shanghai = 2026-03-14T16:00:00Z
    expect(getNextMillis(Date.parse('2026-03-10T12:00:00.000Z'), opts)).toBe(Date.parse('2026-03-14T16:00:00.000Z'));
    expect(getNextMillis(shanghai('2026-03-14T23:59:59.999'), opts)).toBe(Date.parse('2026-03-14T16:00:00.000Z'));
    // From exactly 00:00 on the 15th the next run is the 1st of April.
    expect(getNextMillis(Date.parse('2026-03-14T16:00:00.000Z'), opts)).toBe(Date.parse('2026-03-31T16:00:00.000Z'));
    // UTC midnight of the 15th is 08:00 in Shanghai, after that day's run.
    expect(getNextMillis(Date.parse('2026-03-15T00:00:00.000Z'), opts)).toBe(Date.parse('2026-03-31T16:00:00.000Z'));
    // Year end: 2027-01-01 00:00 Shanghai = 2026-12-31T16:00:00Z
    expect(getNextMillis(Date.parse('2026-12-20T00:00:00.000Z'), opts)).toBe(Date.parse('2026-12-31T16:00:00.000Z'));
  });

  it('a scheduled run job calibrates the date of its scheduled instant', async () => {
    const c = context();
    const users = await idleAccounts(c, 4);
    await worker(c);
    const queue = new Queue(CALIBRATION_QUEUE, { connection: c.queueConnection, prefix: c.keys.queuePrefix(CALIBRATION_QUEUE) });
    closers.push(() => queue.close());
    // As the scheduler adds it: no run id, the scheduled instant in prevMillis (00:00 Shanghai on 2026-03-15).
    await queue.add('run', {}, { prevMillis: Date.parse('2026-03-14T16:00:00.000Z') });
    for (;;) {
      const s = await c.calibration.status('2026-03-15');
      if (s?.status === 'done') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await c.calibration.status('2026-03-15')).toMatchObject({ calibrated: 4, at: '2026-03-14T16:00:00.000Z' });
    expect(await quotas(c, users)).toEqual(users.map(() => 900_000));
  });
});

describe('holiday uplift', () => {
  const uplift = { calibration: { holidayUplifts: [{ name: 'national-day', from: '2026-09-28', to: '2026-10-08', percent: 20 }] } };
  const at = (iso: string) => Date.parse(iso);

  it('raises the effective quota inside [from, to) local, within the band, and leaves the base alone', async () => {
    const c = context(uplift);
    await feed(c, [opened('u-mid', '2026-09-01T00:00:00.000+08:00', 1_000_001), opened('u-top', '2026-09-01T00:00:00.000+08:00', 1_400_000)]);
    const effective = async (u: string, iso: string) => (await c.quotaAccounts.show(u, c.calibrator, at(iso))).effectiveQuota;
    expect(await effective('u-mid', '2026-09-27T23:59:59.999+08:00')).toBe(1_000_001);
    // 1,000,001 × 120 / 100 = 1,200,001 → whole CNY 1,200,000
    expect(await effective('u-mid', '2026-09-28T00:00:00.000+08:00')).toBe(1_200_000);
    expect(await effective('u-mid', '2026-10-07T23:59:59.999+08:00')).toBe(1_200_000);
    expect(await effective('u-mid', '2026-10-08T00:00:00.000+08:00')).toBe(1_000_001);
    // 1,400,000 × 1.2 = 1,680,000 → invited maximum 1,500,000
    expect(await effective('u-top', '2026-10-01T12:00:00.000+08:00')).toBe(1_500_000);
    expect((await c.quotaAccounts.show('u-mid', c.calibrator, at('2026-10-01T12:00:00.000+08:00'))).quota).toBe(1_000_001);
  });

  it('npm run quota -- show prints exactly the account object', async () => {
    const c = context(uplift);
    await feed(c, [opened('u-cli', '2026-09-01T00:00:00.000+08:00', 800_000, 'applied')]);
    await worker(c);
    await calibrate(c, '2026-09-15');
    await feed(c, [charge('u-cli', '2026-09-20T10:00:00.000+08:00', 120_000)]);
    const dir = mkdtempSync(join(tmpdir(), 'riskmon-quota-'));
    closers.push(async () => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(uplift));
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'scripts/quota.ts', 'show', 'u-cli', '--namespace', c.keys.namespace, '--config', join(dir, 'config.json'), '--at', '2026-10-01T12:00:00+08:00'],
      { cwd: ROOT, env: { ...process.env, REDIS_URL: redisUrl() }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    const printed = JSON.parse(out);
    // Opened Sep 1, run Sep 15: P = 14 days, younger than 15 days, no activity: unchanged. The uplift (+20%)
    // is held at the applied band maximum, 800,000. The 1,200 CNY charge after the run is outstanding.
    expect(printed).toEqual({
      userId: 'u-cli',
      channel: 'applied',
      quota: 800_000,
      effectiveQuota: 800_000,
      outstanding: 120_000,
      available: 680_000,
      at: '2026-10-01T04:00:00.000Z',
      openedAt: '2026-09-01T00:00:00.000+08:00',
      lastRun: '2026-09-15',
      history: [{ runId: '2026-09-15', before: 800_000, after: 800_000, factors: [], warnings: [] }],
    });
    expect(Object.keys(printed)).toEqual(['userId', 'channel', 'quota', 'effectiveQuota', 'outstanding', 'available', 'at', 'openedAt', 'lastRun', 'history']);
  });
});

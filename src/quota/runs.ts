/**
 * Calibration runs: start (or restart) run D, fan its accounts out as chunk jobs, calibrate one chunk, and follow
 * a run to its end. Every step is idempotent: an account calibrated for D is skipped, so a run that died halfway
 * is finished by starting it again, and nothing is applied twice.
 */
import { Queue } from 'bullmq';

import type { RiskmonConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { CALIBRATION_QUEUE, type Keys } from '../redis/keys.ts';
import { defineScript, loadScript } from '../redis/scripts.ts';
import type { AuditRecord, QuotaAccounts } from './accounts.ts';
import type { Calibrator } from './calibration.ts';
import { type RedisClient, SlotPipeline } from '../redis/client.ts';

const startScript = loadScript(new URL('./startCalibrationRun-3.lua', import.meta.url));
const fixShardScript = loadScript(new URL('./fixCalibrationShard-3.lua', import.meta.url));
const applyScript = loadScript(new URL('./applyCalibration-6.lua', import.meta.url));
const finishScript = loadScript(new URL('./finishCalibrationChunk-2.lua', import.meta.url));
const failScript = loadScript(new URL('./failCalibrationRun-1.lua', import.meta.url));

export const CHUNK_JOB = 'chunk';
export const RUN_JOB = 'run';
/** Chunk jobs are retried on errors; a chunk is idempotent, so a retry only redoes what is missing. */
export const CHUNK_ATTEMPTS = 5;
/** Jobs added per round trip when fanning out. */
const FAN_OUT_PAGE = 1_000;
/** Rounds of read-compute-apply for accounts that changed under a chunk (another run got there first). */
const MAX_CONFLICT_ROUNDS = 5;

/**
 * How long a scheduled run job that a process picks up before R by its own clock waits for R: a lag of up to the
 * allowed clock skew is waited out (refusing would lose the scheduled run); more is a clock to fix, and refused.
 */
export function scheduledStartDelay(atMs: number, nowMs: number, maxSkewMs: number): number {
  const early = atMs - nowMs;
  return early > 0 && early <= maxSkewMs ? early : 0;
}

/**
 * Where chunk `index` of a run is: chunks are numbered shard after shard, each shard's accounts (`shardAccounts`,
 * their counts joined by ",") in chunks of `chunkSize`.
 */
export function chunkPlace(shardAccounts: string, chunkSize: number, index: number): { shard: number; local: number } {
  let first = 0;
  const counts = shardAccounts.split(',').map(Number);
  for (let shard = 0; shard < counts.length; shard++) {
    const chunks = Math.ceil(counts[shard]! / chunkSize);
    if (index < first + chunks) return { shard, local: index - first };
    first += chunks;
  }
  throw new RangeError(`chunk ${index} is past the run's ${first} chunks`);
}

/** The job id of chunk `index` of run `runId` in attempt `attempt`. */
export function chunkJobId(runId: string, attempt: number, index: number): string {
  return `cal-${runId}-${attempt}-${index}`;
}

/** What works on a run: chunks done in its current attempt, and the calibration queue's jobs by state. */
export interface RunWork {
  chunksDone: number;
  waiting: number;
  active: number;
  delayed: number;
}

export class CalibrationTimeoutError extends Error {
  override name = 'CalibrationTimeoutError';
}

export class CalibrationRefusedError extends Error {
  override name = 'CalibrationRefusedError';
}

export interface ChunkJobData {
  runId: string;
  index: number;
  /** The attempt that added the job (absent on jobs of earlier versions). */
  attempt?: number;
}

export interface RunJobData {
  /** Set for a run started by hand; a scheduled run takes its date from its scheduled instant. */
  runId?: string;
}

export interface RunStatus {
  runId: string;
  /** R, ISO. */
  at: string;
  status: 'running' | 'done' | 'failed';
  accounts: number;
  chunks: number;
  attempts: number;
  /** Accounts calibrated by this run, over all attempts (each once). */
  calibrated: number;
  up: number;
  down: number;
  unchanged: number;
  warnings: number;
  /** Accounts found already calibrated for this run, in the latest attempt. */
  skipped: number;
  /** Accounts already calibrated by a later run, in the latest attempt. */
  refused: number;
  startedAt: string;
  finishedAt: string | null;
  error: string | null;
}

export interface ChunkResult {
  runId: string;
  index: number;
  accounts: number;
  calibrated: number;
  skipped: number;
  refused: number;
  missing: number;
  /** This chunk was the last one of the run. */
  completedRun: boolean;
}

export interface QuotaCalibrationDeps {
  redis: RedisClient;
  /** Connection for the BullMQ queue the chunks are fanned out on. */
  queueConnection: RedisClient;
  keys: Keys;
  config: RiskmonConfig;
  calibrator: Calibrator;
  accounts: QuotaAccounts;
  metrics: Metrics;
  logger: Logger;
  now?: () => number;
}

export class QuotaCalibration {
  private readonly startRun;
  private readonly fixShard;
  private readonly apply;
  private readonly finish;
  private readonly failRun;
  private queue: Queue | undefined;
  private readonly now: () => number;
  private readonly runTtl: number;

  constructor(private readonly deps: QuotaCalibrationDeps) {
    this.startRun = defineScript(deps.redis, startScript);
    this.fixShard = defineScript(deps.redis, fixShardScript);
    this.apply = defineScript(deps.redis, applyScript);
    this.finish = defineScript(deps.redis, finishScript);
    this.failRun = defineScript(deps.redis, failScript);
    this.now = deps.now ?? Date.now;
    this.runTtl = deps.config.calibration.runRetentionDays * 86_400;
  }

  /**
   * Starts run D (or starts it again: resume, repeat) and fans its accounts out as chunk jobs.
   * @throws CalibrationDateError for a date that is not a run day, CalibrationRefusedError for a date before the
   * latest run or whose instant R is still to come.
   */
  async start(date: string): Promise<RunStatus> {
    const { keys, calibrator, config, metrics, logger } = this.deps;
    const run = calibrator.run(date);
    // A run calibrates a period that has ended: started early it would judge a period not yet over ("idle"), prune
    // activity still to count, and, as the latest run, refuse every real run until its date.
    const now = this.now();
    if (run.atMs > now) {
      metrics.calibrationRuns.inc({ result: 'refused' });
      const at = new Date(run.atMs).toISOString();
      throw new CalibrationRefusedError(
        `calibration run ${run.runId} refused: its instant R (${at}, 00:00 ${config.timezone} on ${run.runId}) is after now (${new Date(now).toISOString()}); it may start from R on`,
      );
    }
    const reply = (await this.startRun(
      this.deps.redis,
      [keys.calibrationRun(run.runId), keys.calibrationLatest, keys.calibrationRunDone(run.runId)],
      [run.runId, run.atMs, new Date(run.atMs).toISOString(), config.calibration.chunkSize, new Date(this.now()).toISOString(), this.runTtl],
    )) as [number, number | string, number?];
    if (reply[0] === -1) {
      metrics.calibrationRuns.inc({ result: 'refused' });
      throw new CalibrationRefusedError(
        `calibration run ${run.runId} refused: the run of ${reply[1]} has already started, and runs never go back in time`,
      );
    }
    const [, attempt, chunkSize] = reply as [number, number, number];
    // Each shard fixes its accounts of the run (the first start's set, kept by every attempt), then the chunks are
    // numbered shard after shard.
    const perShard = await Promise.all(
      keys.shardIds.map(
        (shard) =>
          this.fixShard(
            this.deps.redis,
            [keys.calibrationRunAccounts(shard, run.runId), keys.accountIndex(shard), keys.calibrationRunCounts(shard, run.runId)],
            [run.atMs, attempt, this.runTtl],
          ) as Promise<number>,
      ),
    );
    const accounts = perShard.reduce((a, b) => a + b, 0);
    const chunks = perShard.reduce((a, n) => a + Math.ceil(n / chunkSize), 0);
    const status = chunks === 0 ? 'done' : 'running';
    await this.deps.redis.hset(keys.calibrationRun(run.runId), {
      shardAccounts: perShard.join(','),
      accounts,
      chunks,
      status,
      ...(status === 'done' ? { finishedAt: new Date(this.now()).toISOString() } : {}),
    });
    logger.info({ runId: run.runId, accounts, chunks, attempt }, attempt === 1 ? 'calibration run started' : 'calibration run started again');
    if (status === 'done') {
      metrics.calibrationRuns.inc({ result: 'completed' });
    } else {
      await this.fanOut(run.runId, chunks, attempt);
    }
    return (await this.status(run.runId))!;
  }

  /**
   * One chunk job per chunk and attempt. The job ids name the attempt: a restart clears the chunks done, so every
   * chunk needs a job of its own in the new attempt. (With one id per chunk, a job of the previous attempt that had
   * recorded its chunk done but was not yet marked completed kept the new one from being added, and once it was
   * removed nothing recorded that chunk again: the run stayed "running" with no jobs left.) A previous attempt's job
   * still waiting or running does its chunk again: idempotent, each account is applied once per run.
   */
  private async fanOut(runId: string, chunks: number, attempt: number): Promise<void> {
    const queue = this.openQueue();
    for (let first = 0; first < chunks; first += FAN_OUT_PAGE) {
      const jobs = [];
      for (let index = first; index < Math.min(chunks, first + FAN_OUT_PAGE); index++) {
        jobs.push({
          name: CHUNK_JOB,
          data: { runId, index, attempt } satisfies ChunkJobData,
          opts: {
            jobId: chunkJobId(runId, attempt, index),
            attempts: CHUNK_ATTEMPTS,
            backoff: { type: 'exponential', delay: 1_000 },
            // Gone once finished, so a later start of the same run can add the chunk again.
            removeOnComplete: true,
            removeOnFail: true,
          },
        });
      }
      await queue.addBulk(jobs);
    }
  }

  /**
   * Calibrates the accounts of one chunk of run D; safe to run any number of times. A job of an earlier attempt
   * does nothing: the run was started again, and that attempt added a job of its own for the chunk.
   */
  async processChunk(runId: string, index: number, attempt?: number): Promise<ChunkResult> {
    const { redis, keys, calibrator, accounts, metrics, config } = this.deps;
    const runKey = keys.calibrationRun(runId);
    const [chunkSizeText, attemptsText, shardAccountsText] = await redis.hmget(runKey, 'chunkSize', 'attempts', 'shardAccounts');
    const result: ChunkResult = { runId, index, accounts: 0, calibrated: 0, skipped: 0, refused: 0, missing: 0, completedRun: false };
    if (chunkSizeText == null || shardAccountsText == null) {
      this.deps.logger.warn({ runId, index }, 'calibration chunk of an unknown (or expired) run: nothing to do');
      return result;
    }
    if (attempt !== undefined && attempt < Number(attemptsText)) {
      this.deps.logger.info({ runId, index, attempt }, 'calibration chunk of an earlier attempt: superseded by the run started again');
      return result;
    }
    const run = calibrator.run(runId);
    const chunkSize = Number(chunkSizeText);
    const { shard, local } = chunkPlace(shardAccountsText, chunkSize, index);
    const countsKey = keys.calibrationRunCounts(shard, runId);
    let pending = await redis.zrange(keys.calibrationRunAccounts(shard, runId), local * chunkSize, (local + 1) * chunkSize - 1);
    result.accounts = pending.length;

    for (let round = 0; pending.length > 0; round++) {
      if (round === MAX_CONFLICT_ROUNDS) throw new Error(`accounts kept changing under calibration chunk ${index} of run ${runId}`);
      const read = await accounts.read(pending);
      const pipeline = redis.pipeline();
      const applied: { userId: string; change: string; warnings: string[] }[] = [];
      let skipped = 0;
      let refused = 0;
      read.forEach((entry, i) => {
        const userId = pending[i]!;
        if (!entry) {
          result.missing++;
          return;
        }
        const outcome = calibrator.calibrate(entry.account, entry.activity, run);
        if (outcome.kind === 'skipped') skipped++;
        else if (outcome.kind === 'refused') refused++;
        else if (outcome.kind === 'excluded') result.missing++;
        else {
          const audit: AuditRecord = {
            runId,
            userId,
            before: outcome.before,
            after: outcome.after,
            factors: outcome.factors,
            warnings: outcome.warnings,
            ...(outcome.late.charges > 0 || outcome.late.events.length > 0 ? { late: outcome.late } : {}),
          };
          this.apply(
            pipeline,
            [keys.account(userId), keys.quotaAudit(userId), countsKey, keys.repayments(userId), keys.assetSnapshots(userId), keys.socialSnapshots(userId)],
            [
              runId,
              run.atMs,
              entry.account.lastRunId ?? '',
              entry.account.quota,
              outcome.after,
              outcome.change,
              JSON.stringify(audit),
              config.calibration.auditHistory,
              outcome.warnings.length,
              entry.account.seq,
              run.idleFromDate,
            ],
          );
          applied.push({ userId, change: outcome.change, warnings: outcome.warnings.map((w) => w.warning) });
        }
      });
      if (skipped > 0) pipeline.hincrby(countsKey, 'skipped', skipped);
      if (refused > 0) pipeline.hincrby(countsKey, 'refused', refused);
      result.skipped += skipped;
      result.refused += refused;
      const replies = (await pipeline.exec()) ?? [];
      const retry: string[] = [];
      applied.forEach((a, i) => {
        const [err, reply] = replies[i]!;
        if (err) throw err;
        const code = (reply as [number])[0];
        if (code === 1) {
          result.calibrated++;
          metrics.calibrationAccounts.inc({ change: a.change });
          for (const warning of a.warnings) metrics.calibrationWarnings.inc({ warning });
        } else if (code === 0) result.skipped++;
        else if (code === -1) result.refused++;
        else if (code === 2) retry.push(a.userId);
        else result.missing++;
      });
      pending = retry;
    }

    const [done] = (await this.finish(redis, [runKey, keys.calibrationRunDone(runId)], [index, new Date(this.now()).toISOString(), this.runTtl])) as [number];
    if (done === 1) {
      result.completedRun = true;
      metrics.calibrationRuns.inc({ result: 'completed' });
      this.deps.logger.info(await this.status(runId), 'calibration run completed');
    }
    return result;
  }

  /** Marks a run failed (a chunk ran out of attempts); starting it again resumes it. */
  async fail(runId: string, error: string, attempt?: number): Promise<void> {
    const changed = await this.failRun(this.deps.redis, [this.deps.keys.calibrationRun(runId)], [error, attempt ?? '']);
    if (changed === 1) this.deps.metrics.calibrationRuns.inc({ result: 'failed' });
  }

  async status(runId: string): Promise<RunStatus | null> {
    const { redis, keys } = this.deps;
    const h = await redis.hgetall(keys.calibrationRun(runId));
    if (!h.runId) return null;
    // The counters are the shards' (each written where its accounts are), added up.
    const counts = new SlotPipeline(redis);
    for (const shard of keys.shardIds) counts.add(keys.calibrationRunCounts(shard, runId), (p) => p.hgetall(keys.calibrationRunCounts(shard, runId)));
    const totals: Record<string, number> = {};
    for (const [err, reply] of await counts.exec()) {
      if (err) throw err;
      for (const [field, value] of Object.entries(reply as Record<string, string>)) totals[field] = (totals[field] ?? 0) + Number(value);
    }
    const n = (k: string) => Number(h[k] ?? 0);
    const c = (k: string) => totals[k] ?? 0;
    return {
      runId: h.runId,
      at: h.atIso ?? '',
      // "starting" (shards still fixing their accounts) reads as running.
      status: (h.status === 'starting' ? 'running' : h.status) as RunStatus['status'],
      accounts: n('accounts'),
      chunks: n('chunks'),
      attempts: n('attempts'),
      calibrated: c('calibrated'),
      up: c('up'),
      down: c('down'),
      unchanged: c('unchanged'),
      warnings: c('warnings'),
      skipped: c('skipped'),
      refused: c('refused'),
      startedAt: h.startedAt ?? '',
      finishedAt: h.finishedAt ?? null,
      error: h.error ?? null,
    };
  }

  /**
   * Resolves when the run is done; rejects when it failed, or with CalibrationTimeoutError after `timeoutMs`,
   * saying what is left and whether anything works on it.
   */
  async waitUntilDone(runId: string, options: { pollMs?: number; timeoutMs?: number; onProgress?: (s: RunStatus, w: RunWork) => void } = {}): Promise<RunStatus> {
    const deadline = options.timeoutMs === undefined ? Infinity : this.now() + options.timeoutMs;
    for (;;) {
      const s = await this.status(runId);
      if (!s) throw new Error(`no calibration run ${runId}`);
      if (s.status === 'done') return s;
      if (s.status === 'failed') throw new Error(`calibration run ${runId} failed: ${s.error}; start it again to resume`);
      const work = options.onProgress || this.now() >= deadline ? await this.work(runId) : undefined;
      if (work && options.onProgress) options.onProgress(s, work);
      if (work && this.now() >= deadline) {
        throw new CalibrationTimeoutError(
          `calibration run ${runId} (attempt ${s.attempts}) not done after ${Math.round(options.timeoutMs! / 1000)} s: ${work.chunksDone} of ${s.chunks} chunks done, ` +
            `${s.calibrated} of ${s.accounts} accounts calibrated; chunk jobs waiting ${work.waiting}, active ${work.active}, delayed (retrying) ${work.delayed}` +
            (work.waiting + work.delayed > 0 && work.active === 0 ? ' (no worker is taking them: is a calibration worker running?)' : '') +
            `. Nothing is lost: start the run again (npm run calibrate -- --date ${runId}) to resume it`,
        );
      }
      await new Promise((r) => setTimeout(r, options.pollMs ?? 100));
    }
  }

  /** What works on a run now: its chunks done in the current attempt and the calibration queue's chunk jobs. */
  async work(runId: string): Promise<RunWork> {
    const [chunksDone, counts] = await Promise.all([
      this.deps.redis.scard(this.deps.keys.calibrationRunDone(runId)),
      this.openQueue().getJobCounts('waiting', 'active', 'delayed'),
    ]);
    return { chunksDone, waiting: counts.waiting ?? 0, active: counts.active ?? 0, delayed: counts.delayed ?? 0 };
  }

  async close(): Promise<void> {
    await this.queue?.close();
    this.queue = undefined;
  }

  private openQueue(): Queue {
    this.queue ??= new Queue(CALIBRATION_QUEUE, { connection: this.deps.queueConnection, prefix: this.deps.keys.queuePrefix(CALIBRATION_QUEUE) });
    return this.queue;
  }
}

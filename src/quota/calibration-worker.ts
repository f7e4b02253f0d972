/**
 * The calibration component of the service: a BullMQ job scheduler starts a run at 00:00 local on each run day
 * (cron "0 0 1,15 * *", tz from config), and a worker takes the run job (fan-out) and the chunk jobs. Any number
 * of processes may run it: chunks are idempotent and the scheduler is one per namespace.
 */
import { Queue, Worker, type Job } from 'bullmq';

import type { RiskmonConfig } from '../config.ts';
import type { Context } from '../context.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { CALIBRATION_QUEUE, type Keys } from '../redis/keys.ts';
import { observeWorker } from '../redis/worker-events.ts';
import type { Calibrator } from './calibration.ts';
import { CalibrationRefusedError, CHUNK_JOB, RUN_JOB, scheduledStartDelay, type ChunkJobData, type QuotaCalibration, type RunJobData } from './runs.ts';
import type { RedisClient } from '../redis/client.ts';
import { startWatchedWorker } from '../redis/worker-watchdog.ts';

export const CALIBRATION_SCHEDULER_ID = 'quota-calibration';

export interface CalibrationWorkerOptions {
  connection: RedisClient;
  keys: Keys;
  config: RiskmonConfig;
  calibrator: Calibrator;
  calibration: QuotaCalibration;
  logger: Logger;
  /** Failed and stalled jobs are counted here, by queue, like every worker's. */
  metrics: Metrics;
  /** Install (or update) the job scheduler. @defaultValue true */
  schedule?: boolean;
  /** Chunk jobs at a time in this process. @defaultValue config.calibration.concurrency */
  concurrency?: number;
  /** Replace the worker when its queue stands still for config.pipeline.watchdogSeconds. @defaultValue false */
  watchdog?: boolean;
  /** Told when the watchdog replaces the worker. */
  onReplaced?: (old: Worker, fresh: Worker) => void;
}

/** Installs the scheduler: idempotent, and it follows a changed cron or zone. */
export async function scheduleCalibration(queue: Queue, calibrator: Calibrator, timezone: string): Promise<void> {
  await queue.upsertJobScheduler(
    CALIBRATION_SCHEDULER_ID,
    { pattern: calibrator.cron, tz: timezone },
    { name: RUN_JOB, data: {} satisfies RunJobData, opts: { attempts: 3, backoff: { type: 'exponential', delay: 5_000 }, removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } } },
  );
}

export interface CalibrationWorker {
  /** The worker running now (the watchdog may have replaced the first). */
  readonly worker: Worker;
  /** Closes the worker by `deadline` (epoch ms; see closeWorker); resolves the queues abandoned. @defaultValue no deadline */
  close(deadline?: number): Promise<string[]>;
}

export async function startCalibrationWorker(options: CalibrationWorkerOptions): Promise<CalibrationWorker> {
  const { connection, keys, config, calibrator, calibration, logger, metrics } = options;
  if (options.schedule ?? true) {
    const queue = new Queue(CALIBRATION_QUEUE, { connection, prefix: keys.queuePrefix(CALIBRATION_QUEUE) });
    await scheduleCalibration(queue, calibrator, config.timezone);
    await queue.close();
  }

  const startWorker = () => {
    const worker = new Worker(
      CALIBRATION_QUEUE,
      async (job: Job) => {
        if (job.name === CHUNK_JOB) {
          const { runId, index, attempt } = job.data as ChunkJobData;
          return calibration.processChunk(runId, index, attempt);
        }
        if (job.name === RUN_JOB) {
          // A scheduled job fires at 00:00 local on D; `prevMillis` is that instant even when it runs late.
          const scheduled = (job.data as RunJobData).runId === undefined;
          const runId = (job.data as RunJobData).runId ?? calibrator.runDateAt(job.opts.prevMillis ?? job.timestamp);
          try {
            if (scheduled) {
              const wait = scheduledStartDelay(calibrator.run(runId).atMs, Date.now(), config.events.maxFutureSkewSeconds * 1000);
              if (wait > 0) await new Promise((r) => setTimeout(r, wait));
            }
            const status = await calibration.start(runId);
            return { runId, accounts: status.accounts, chunks: status.chunks };
          } catch (e) {
            if (e instanceof CalibrationRefusedError) {
              logger.error({ runId, err: e.message }, 'calibration run refused');
              return { runId, refused: e.message };
            }
            throw e;
          }
        }
        throw new Error(`unknown calibration job ${job.name}`);
      },
      {
        connection,
        prefix: keys.queuePrefix(CALIBRATION_QUEUE),
        concurrency: options.concurrency ?? config.calibration.concurrency,
        lockDuration: config.pipeline.lockDurationMs,
        stalledInterval: config.pipeline.stalledIntervalMs,
        // A chunk whose worker died is redelivered however often that happens; it is idempotent.
        maxStalledCount: Number.MAX_SAFE_INTEGER,
      },
    );
    observeWorker(worker, metrics, logger, {
      job: 'calibration job',
      onFailedForGood: (job, err) => {
        if (job.name !== CHUNK_JOB) return;
        const { runId, index, attempt } = job.data as ChunkJobData;
        void calibration.fail(runId, `chunk ${index}: ${err.message}`, attempt).catch((e) => logger.error({ err: (e as Error).message }, 'could not mark the run failed'));
      },
    });
    return worker;
  };
  return startWatchedWorker(startWorker, {
    connection,
    seconds: options.watchdog ? config.pipeline.watchdogSeconds : 0,
    onReplaced: options.onReplaced,
    component: 'calibration',
    logger,
    metrics,
    scheduler: (options.schedule ?? true) ? { id: CALIBRATION_SCHEDULER_ID, install: (queue) => scheduleCalibration(queue, calibrator, config.timezone) } : undefined,
  });
}

/** The worker wired from a context, without the scheduler: what `npm run calibrate`, the benchmark and tests run. */
export function startCalibrationWorkerFor(context: Context, concurrency?: number): ReturnType<typeof startCalibrationWorker> {
  return startCalibrationWorker({
    connection: context.queueConnection,
    keys: context.keys,
    config: context.settings.config,
    calibrator: context.calibrator,
    calibration: context.calibration,
    logger: context.logger,
    metrics: context.metrics,
    schedule: false,
    concurrency,
  });
}

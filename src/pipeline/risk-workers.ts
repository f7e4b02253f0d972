/**
 * One BullMQ worker per shard queue, each running one job at a time. Transient Redis failures are retried
 * inside the job (never through BullMQ's retry, which would put the batch behind later ones and break order).
 *
 * A watchdog (src/redis/worker-watchdog.ts) replaces a worker whose shard has had batches waiting and none running
 * for `pipeline.watchdogSeconds`.
 */
import { WaitingError, Worker, type Job, type JobJson } from 'bullmq';
import type { RiskmonConfig } from '../config.ts';
import type { CardHasher } from '../events/card.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { riskQueueName, type Keys } from '../redis/keys.ts';
import { closeWorker } from '../redis/shutdown.ts';
import { observeWorker } from '../redis/worker-events.ts';
import type { BatchJobData, EventResult } from './batch-job.ts';
import { openRiskQueues } from './producer.ts';
import { isTransientRedisError, TransientBatchError, type RiskProcessor } from './risk-processor.ts';
import { mayHoldCardData, scrubBatch } from './scrub.ts';
import type { RedisClient } from '../redis/client.ts';
import { startWatchdog } from '../redis/worker-watchdog.ts';


export interface RiskWorkersOptions {
  connection: RedisClient;
  keys: Keys;
  pipeline: RiskmonConfig['pipeline'];
  processor: RiskProcessor;
  logger: Logger;
  metrics: Metrics;
  /** Rewrites processed payloads that hold card numbers in clear (foreign producers). @defaultValue undefined (off) */
  cards?: CardHasher;
  /** Told when the watchdog replaces a worker (the service keeps its list of workers for readiness). */
  onReplaced?: (old: Worker, fresh: Worker) => void;
}

export interface RiskWorkers {
  /** One per shard, by shard (the watchdog replaces entries in place). */
  workers: Worker[];
  /**
   * Stops taking batches; in-flight ones finish or go back to their queue by `deadline` (epoch ms), past which they
   * are abandoned (and redelivered once their locks expire). Resolves the queues of the workers abandoned.
   * @defaultValue no deadline
   */
  close(deadline?: number): Promise<string[]>;
}

const MAX_BACKOFF_MS = 2_000;

/**
 * A job whose stored payload is not JSON (written to Redis by something other than BullMQ) would make BullMQ throw
 * before our code runs, the job would be redelivered forever, and its shard (concurrency 1) would stop. It is handed
 * to the processor as an unreadable payload instead, which dead-letters it.
 */
class RiskWorker extends Worker<BatchJobData> {
  protected override createJob(data: JobJson, jobId: string): Job<BatchJobData> {
    try {
      return super.createJob(data, jobId);
    } catch {
      return super.createJob({ ...data, data: JSON.stringify({ unreadablePayload: String(data.data).slice(0, 4_096) }) }, jobId);
    }
  }
}

export async function startRiskWorkers(options: RiskWorkersOptions): Promise<RiskWorkers> {
  const { connection, keys, pipeline, processor, logger, metrics, cards } = options;
  // Global concurrency must be in place before any worker takes a job.
  const queues = await openRiskQueues(connection, keys, pipeline.shards);
  await Promise.all(queues.map((q) => q.close()));
  let closing = false;

  const process = async (job: Job<BatchJobData>, token?: string): Promise<EventResult[] | { events: number }> => {
    for (let attempt = 1; ; attempt++) {
      try {
        const results = await processor.process(job.data, `queue:${job.queueName}/${job.id}`);
        // Our producer queues only valid, tokenized events: scrub only batches that may hold a card in clear.
        const mayHoldCards = results.some((r) => r.outcome === 'rejected') || mayHoldCardData(job.data);
        const scrubbed = cards && mayHoldCards ? scrubBatch(job.data, cards) : null;
        if (scrubbed) await job.updateData(scrubbed as BatchJobData);
        return job.data?.reply ? results : { events: results.length };
      } catch (e) {
        if (!(e instanceof TransientBatchError || isTransientRedisError(e))) throw e;
        if (closing) {
          // Shutting down: hand the batch back to the front of its queue (it is idempotent) instead of failing it,
          // which would lose it. If Redis cannot take it back, its lock expires and it is redelivered.
          logger.warn({ queue: job.queueName, jobId: job.id, err: (e as Error).message }, 'batch returned to its queue at shutdown');
          await job.moveToWait(token).catch(() => undefined);
          throw new WaitingError();
        }
        metrics.processingErrors.inc({ component: 'risk' });
        const wait = Math.min(MAX_BACKOFF_MS, 50 * 2 ** Math.min(attempt, 6));
        logger.warn({ queue: job.queueName, jobId: job.id, attempt, err: (e as Error).message, retryInMs: wait }, 'batch retry after transient Redis error');
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  };

  const startWorker = (shard: number): Worker => {
    const worker = new RiskWorker(riskQueueName(shard), process, {
      connection,
      prefix: keys.queuePrefix(riskQueueName(shard)),
      concurrency: 1,
      lockDuration: pipeline.lockDurationMs,
      stalledInterval: pipeline.stalledIntervalMs,
      // A batch whose worker died is redelivered however often that happens; it is idempotent.
      maxStalledCount: Number.MAX_SAFE_INTEGER,
      autorun: true,
    });
    observeWorker(worker, metrics, logger, { job: 'batch' });
    return worker;
  };
  const workers = Array.from({ length: pipeline.shards }, (_, shard) => startWorker(shard));
  await Promise.all(workers.map((w) => w.waitUntilReady()));

  const watchdog = startWatchdog({
    connection,
    seconds: pipeline.watchdogSeconds,
    workers,
    replace: startWorker,
    onReplaced: options.onReplaced,
    component: 'risk',
    logger,
    metrics,
  });

  return {
    workers,
    async close(deadline = Infinity) {
      closing = true;
      watchdog.stop();
      const clean = await Promise.all(workers.map((w) => closeWorker(w, deadline, logger)));
      return workers.filter((_, i) => !clean[i]).map((w) => w.name);
    },
  };
}

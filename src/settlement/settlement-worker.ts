/**
 * Releases due settlements on a BullMQ job scheduler (one repeatable job, not one job per transaction).
 * Several processes may run it at once: each release is exactly-once in Redis.
 */
import { Queue, Worker } from 'bullmq';
import type { RiskmonConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { SETTLEMENT_QUEUE, type Keys } from '../redis/keys.ts';
import { observeWorker } from '../redis/worker-events.ts';
import type { ReleaseResult, SettlementLedger } from './ledger.ts';
import type { RedisClient } from '../redis/client.ts';
import { startWatchedWorker } from '../redis/worker-watchdog.ts';

export const RELEASE_SCHEDULER_ID = 'settlement-release';

export interface SettlementWorkerOptions {
  connection: RedisClient;
  keys: Keys;
  settlement: RiskmonConfig['settlement'];
  ledger: SettlementLedger;
  logger: Logger;
  metrics: Metrics;
  now?: () => number;
  /** pipeline.watchdogSeconds: the worker is replaced when its queue stands still this long (0: never). @defaultValue 0 */
  watchdogSeconds?: number;
  /** Told when the watchdog replaces the worker. */
  onReplaced?: (old: Worker, fresh: Worker) => void;
}

export interface SettlementWorker {
  /** The worker running now (the watchdog may have replaced the first). */
  readonly worker: Worker;
  /** Closes the worker by `deadline` (epoch ms; see closeWorker); resolves the queues abandoned. @defaultValue no deadline */
  close(deadline?: number): Promise<string[]>;
}

export async function startSettlementWorker(options: SettlementWorkerOptions): Promise<SettlementWorker> {
  const { connection, keys, settlement, ledger, logger, metrics } = options;
  const now = options.now ?? Date.now;
  const install = (queue: Queue) =>
    queue
      .upsertJobScheduler(RELEASE_SCHEDULER_ID, { every: settlement.tickSeconds * 1000 }, { name: 'release', opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 1000 } } })
      .then(() => undefined);
  const queue = new Queue(SETTLEMENT_QUEUE, { connection, prefix: keys.queuePrefix(SETTLEMENT_QUEUE) });
  await install(queue);
  await queue.close();

  const startWorker = () => {
    const worker = new Worker(
      SETTLEMENT_QUEUE,
      async () => {
        // The wall clock: a tick pays into today's ledger, whatever the due scores say.
        const result = await ledger.releaseDue(now(), settlement.batchSize);
        recordRelease(result, metrics, logger);
        return result;
      },
      { connection, prefix: keys.queuePrefix(SETTLEMENT_QUEUE), concurrency: 1 },
    );
    // A failed release is not retried as a job: the next tick releases what is still due.
    observeWorker(worker, metrics, logger, { job: 'settlement release' });
    return worker;
  };
  return startWatchedWorker(startWorker, {
    connection,
    seconds: options.watchdogSeconds ?? 0,
    onReplaced: options.onReplaced,
    component: 'settlement',
    logger,
    metrics,
    scheduler: { id: RELEASE_SCHEDULER_ID, install },
  });
}

/** Counts and logs one release (the worker's tick or the CLI's); no event data is logged. */
export function recordRelease(result: ReleaseResult, metrics: Metrics, logger: Logger): void {
  const summary = { date: result.date, settled: result.settled, settledAmount: result.settledAmount, missingInfo: result.missingInfo };
  if (result.settled > 0) {
    metrics.settlementsSettled.inc(result.settled);
    // Counters only rise: the amount paid is the charges' (what reversals take back is under kind "reversal" below).
    metrics.settlementsSettledAmount.inc(result.paid.reduce((t, p) => t + (p.kind === 'charge' ? p.grossFen : 0), 0));
    for (const t of result.paid) {
      // Counters only rise: a reversal counts its fees and net given back, as magnitudes, under kind "reversal".
      const labels = { tier: String(t.tier), kind: t.kind };
      metrics.settlementFees.inc({ ...labels, fee: 'base' }, Math.abs(t.baseFeeFen));
      metrics.settlementFees.inc({ ...labels, fee: 'technical' }, Math.abs(t.techFeeFen));
      metrics.settlementNet.inc(labels, Math.abs(t.netFen));
    }
    logger.info(summary, 'settlements released');
  }
  for (const seconds of result.caseDeadlines.decisionSeconds) metrics.caseClosed('auto_released', seconds);
  if (result.caseDeadlines.autoReleased + result.caseDeadlines.extended + result.caseDeadlines.waiting > 0) {
    const { decisionSeconds: _, ...cases } = result.caseDeadlines;
    logger.info({ date: result.date, ...cases }, 'review cases at their deadline');
  }
  if (result.missingInfo > 0) logger.error(summary, 'due settlements without their settlement info: left unpaid in the due set');
}

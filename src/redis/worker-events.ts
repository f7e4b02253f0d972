/**
 * What every BullMQ worker of the service reports, whatever its queue: jobs failed for good and stalled jobs,
 * counted by queue (riskmon_jobs_failed_total, riskmon_jobs_stalled_total: the stalled alert and the dashboard read
 * them), and errors, failures and redeliveries logged. One
 * place for it, so no queue is left out of the alerts.
 */
import type { Job, Worker } from 'bullmq';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';

export interface WorkerReports {
  /** What a job is, in log lines: "batch" gives "batch failed", "batch redelivered after a worker stopped". */
  job: string;
  /** Called once a job has failed for good (after its last attempt). */
  onFailedForGood?(job: Job, err: Error): void;
}

export function observeWorker(worker: Worker, metrics: Metrics, logger: Logger, reports: WorkerReports): void {
  const queue = worker.name;
  // Known label values start at zero, so the alerts' increase() sees the first failure.
  metrics.jobsFailed.inc({ queue }, 0);
  metrics.jobsStalled.inc({ queue }, 0);
  worker.on('error', (err) => logger.error({ queue, err: err.message }, 'worker error'));
  worker.on('failed', (job, err) => {
    // BullMQ reports every failed attempt; one it retries is not failed. It sets finishedOn only on the final move
    // to failed (attempts spent, an UnrecoverableError, a backoff that gives up).
    const forGood = !job || Boolean(job.finishedOn);
    logger.error({ queue, jobId: job?.id, name: job?.name, attempt: job?.attemptsMade, err: err.message, retried: !forGood }, `${reports.job} failed`);
    if (!forGood) return;
    metrics.jobsFailed.inc({ queue });
    if (job) reports.onFailedForGood?.(job, err);
  });
  worker.on('stalled', (jobId) => {
    metrics.jobsStalled.inc({ queue });
    logger.warn({ queue, jobId }, `${reports.job} redelivered after a worker stopped`);
  });
}

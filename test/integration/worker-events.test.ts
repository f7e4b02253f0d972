/**
 * Every worker of the service reports failed and stalled jobs by queue (src/redis/worker-events.ts): found in
 * review, the calibration worker counted neither, so riskmon_jobs_failed_total and riskmon_jobs_stalled_total (the
 * stalled alert, the dashboard) never saw its queue.
 */
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.ts';
import { silentLogger } from '../../src/logger.ts';
import { Metrics } from '../../src/metrics.ts';
import { CALIBRATION_QUEUE, riskQueueName, SETTLEMENT_QUEUE } from '../../src/redis/keys.ts';
import { observeWorker } from '../../src/redis/worker-events.ts';
import { startService, type Service } from '../../src/service.ts';
import { dropContext, dropNamespace, freshNamespace, redisUrl, testContext } from '../helpers/context.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const count = async (metrics: Metrics, name: 'jobsFailed' | 'jobsStalled', queue: string) =>
  (await metrics[name].get()).values.find((v) => v.labels.queue === queue)?.value;

/** A queue whose worker always throws `error`, observed by observeWorker; what it reported failed for good. */
function failingQueue(name: string, error: () => Error) {
  const ctx = testContext();
  const metrics = new Metrics({ defaultMetrics: false });
  const queue = new Queue(name, { connection: ctx.queueConnection, prefix: ctx.keys.queuePrefix(name) });
  const worker = new Worker(name, async (): Promise<void> => {
    throw error();
  }, { connection: ctx.queueConnection, prefix: ctx.keys.queuePrefix(name) });
  cleanups.push(() => dropContext(ctx), () => queue.close(), () => worker.close());
  const failedForGood: string[] = [];
  observeWorker(worker, metrics, silentLogger, { job: `${name} job`, onFailedForGood: (job) => failedForGood.push(job.id!) });
  return { metrics, queue, worker, failedForGood };
}

describe('worker reports', () => {
  it('counts a job failed for good once, after its last attempt, not the attempts that are retried', async () => {
    const { metrics, queue, worker, failedForGood } = failingQueue('flaky', () => new Error('always fails'));
    expect(await count(metrics, 'jobsFailed', 'flaky')).toBe(0);
    const attempts: number[] = [];
    worker.on('failed', (job) => attempts.push(job!.attemptsMade));
    const job = await queue.add('x', {}, { attempts: 2 });
    for (let i = 0; i < 100 && attempts.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    expect(attempts).toEqual([1, 2]);
    expect(await count(metrics, 'jobsFailed', 'flaky')).toBe(1);
    expect(failedForGood).toEqual([job.id]);
  });

  it('counts a job BullMQ fails for good before its attempts are spent (UnrecoverableError)', async () => {
    const { metrics, queue, failedForGood } = failingQueue('doomed', () => new UnrecoverableError('never retry'));
    const job = await queue.add('x', {}, { attempts: 5 });
    for (let i = 0; i < 100 && failedForGood.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(failedForGood).toEqual([job.id]);
    expect(await count(metrics, 'jobsFailed', 'doomed')).toBe(1);
  });

  it('labels every queue of the service, the calibration queue included', async () => {
    const settings = loadSettings({ namespace: freshNamespace('reports'), env: {} });
    const service: Service = await startService({ components: ['risk', 'settlement', 'calibration'], settings, logger: silentLogger, redisUrl: redisUrl() });
    cleanups.push(async () => {
      await dropNamespace(service.context.redis, settings.config.namespace);
      await service.close();
    });
    const queues = [...Array.from({ length: settings.config.pipeline.shards }, (_, s) => riskQueueName(s)), SETTLEMENT_QUEUE, CALIBRATION_QUEUE];
    for (const q of queues) {
      expect(await count(service.context.metrics, 'jobsFailed', q), q).toBe(0);
      expect(await count(service.context.metrics, 'jobsStalled', q), q).toBe(0);
    }
  });
});

/**
 * Replaces a BullMQ worker whose queue stands still: jobs waiting (or delayed ones overdue, which only a working
 * worker promotes) and none running, in any process, the queue not paused, for `seconds`. After a failover a
 * worker's blocking connection can wedge for good (BullMQ issue 4138; BullMQ's own fix covers some of the ways),
 * and the worker then looks alive while its queue stands still. Every queue is read in one round trip (one pipeline
 * per slot) every few seconds.
 */
import { Queue, type Worker } from 'bullmq';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { SlotPipeline, type RedisClient } from './client.ts';
import { closeWorker } from './shutdown.ts';

/** The workers watched, as the label `component` of riskmon_worker_watchdog_restarts_total names them. */
export const WATCHED_COMPONENTS = ['risk', 'settlement', 'calibration'] as const;

export interface WatchdogOptions {
  connection: RedisClient;
  /** How long a queue may stand still; 0 turns the watchdog off. */
  seconds: number;
  /** The workers watched, by slot; `replace(i)` starts a new one for slot i and returns it. */
  workers: Worker[];
  replace(index: number): Worker;
  /** Told of each replacement (the service keeps its list of workers for readiness). */
  onReplaced?: (old: Worker, fresh: Worker) => void;
  component: (typeof WATCHED_COMPONENTS)[number];
  logger: Logger;
  metrics: Metrics;
}

/** BullMQ's delayed scores are the due time in ms × 0x1000 (getDelayedScore.lua). */
const DELAYED_SCORE_PER_MS = 0x1000;

export function startWatchdog(options: WatchdogOptions): { stop(): void } {
  const { workers, seconds, logger, metrics } = options;
  if (seconds <= 0) return { stop: () => undefined };
  const standingSince = new Map<number, number>();
  let checking = false;
  let stopped = false;
  const check = async () => {
    if (checking || stopped) return;
    checking = true;
    try {
      const standing = await standingQueues(options.connection, workers);
      const now = Date.now();
      for (const [index, worker] of workers.entries()) {
        if (!standing.has(index) || worker.closing) {
          standingSince.delete(index);
          continue;
        }
        const since = standingSince.get(index) ?? now;
        standingSince.set(index, since);
        if (now - since < seconds * 1000 || stopped) continue;
        standingSince.delete(index);
        logger.warn({ queue: worker.name, standingForMs: now - since }, 'worker replaced: its queue had jobs due and none running');
        metrics.watchdogRestarts.inc({ component: options.component });
        const fresh = options.replace(index);
        workers[index] = fresh;
        options.onReplaced?.(worker, fresh);
        // The old one may never answer: closed without waiting (a job it holds is redelivered when its lock expires).
        void worker.close(true).catch(() => undefined);
      }
    } catch {
      // Redis away: nothing stands still that a new worker would move; the next check looks again.
    } finally {
      checking = false;
    }
  };
  const timer = setInterval(() => void check(), Math.min(5_000, seconds * 250));
  timer.unref();
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}

/** A BullMQ job scheduler whose queue should always hold its next job. */
export interface WatchedScheduler {
  id: string;
  /** Adds the scheduler (upsertJobScheduler) to the worker's queue. */
  install(queue: Queue): Promise<void>;
}

/**
 * One worker under the watchdog (the settlement and calibration workers): started with `start` (again when
 * replaced), ready when this resolves. `worker` is the one running now; `close` stops the watchdog, then the worker
 * by `deadline` (see closeWorker), and resolves the queue abandoned, if any.
 *
 * With `scheduler`, its queue is watched too: a scheduler's next job always waits in it (BullMQ adds the next one as
 * the current one starts), so a queue that holds no job at all for `seconds` has lost it, as a failover can lose a
 * master's last writes, and no tick would ever come again. The scheduler is then installed afresh.
 */
export async function startWatchedWorker(
  start: () => Worker,
  options: Omit<WatchdogOptions, 'workers' | 'replace'> & { scheduler?: WatchedScheduler },
): Promise<{ readonly worker: Worker; close(deadline?: number): Promise<string[]> }> {
  const workers = [start()];
  await workers[0]!.waitUntilReady();
  const watchdog = startWatchdog({ ...options, workers, replace: start });
  const keeper = options.scheduler ? keepScheduler(workers[0]!, options.scheduler, options) : undefined;
  return {
    get worker() {
      return workers[0]!;
    },
    async close(deadline = Infinity) {
      watchdog.stop();
      await keeper?.stop();
      return (await closeWorker(workers[0]!, deadline, options.logger)) ? [] : [workers[0]!.name];
    },
  };
}

/** The job states a scheduler's next job can be in. */
const SCHEDULED_STATES = ['wait', 'delayed', 'active', 'prioritized'] as const;

function keepScheduler(worker: Worker, scheduler: WatchedScheduler, options: Omit<WatchdogOptions, 'workers' | 'replace'>): { stop(): Promise<void> } {
  const { seconds, logger, metrics } = options;
  if (seconds <= 0) return { stop: async () => undefined };
  const queue = new Queue(worker.name, { connection: options.connection, prefix: worker.opts.prefix });
  queue.on('error', () => undefined);
  let emptySince: number | undefined;
  let checking: Promise<void> | undefined;
  const check = async () => {
    try {
      const counts = await queue.getJobCounts(...SCHEDULED_STATES);
      const jobs = SCHEDULED_STATES.reduce((n, state) => n + (counts[state] ?? 0), 0);
      const now = Date.now();
      if (jobs > 0) {
        emptySince = undefined;
        return;
      }
      emptySince ??= now;
      if (now - emptySince < seconds * 1000) return;
      emptySince = undefined;
      logger.warn({ queue: worker.name, scheduler: scheduler.id }, 'job scheduler installed again: its queue had lost the next job');
      metrics.schedulerRepairs.inc({ component: options.component });
      await queue.removeJobScheduler(scheduler.id);
      await scheduler.install(queue);
    } catch {
      // Redis away: the next check looks again.
    }
  };
  const timer = setInterval(() => {
    checking ??= check().finally(() => (checking = undefined));
  }, Math.min(5_000, seconds * 250));
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await checking;
      await queue.close();
    },
  };
}

/** The indexes of the workers whose queue has jobs due and none running, and is not paused. */
async function standingQueues(connection: RedisClient, workers: readonly Worker[]): Promise<Set<number>> {
  const pipeline = new SlotPipeline(connection);
  const dueScore = Date.now() * DELAYED_SCORE_PER_MS;
  for (const w of workers) {
    const k = w.keys;
    pipeline.add(k.wait!, (p) => p.llen(k.wait!).zcount(k.delayed!, '-inf', dueScore).llen(k.active!).hget(k.meta!, 'paused'));
  }
  const replies = await pipeline.exec();
  const standing = new Set<number>();
  workers.forEach((_, i) => {
    const group = replies.slice(i * 4, i * 4 + 4);
    for (const [err] of group) if (err) throw err;
    const [waiting, overdue, active, paused] = group.map(([, v]) => v);
    if (Number(waiting) + Number(overdue) > 0 && Number(active) === 0 && paused === null) standing.add(i);
  });
  return standing;
}

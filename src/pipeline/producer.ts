/**
 * The way events enter the pipeline. Events are routed to their user's shard queue and carried many per job
 * (micro-batches closed by size or by a short linger), because one BullMQ job per event costs as much Redis
 * time as all the rules together. Jobs of one shard are added strictly in order.
 */
import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RiskmonConfig } from '../config.ts';
import { tokenizeCharge, type CardHasher } from '../events/card.ts';
import type { RiskEvent } from '../events/schema.ts';
import { Keys, riskQueueName } from '../redis/keys.ts';
import { BATCH_JOB_NAME, type BatchJobData } from './batch-job.ts';
import { shardOf } from './shards.ts';

export interface ProducerOptions {
  connection: Redis;
  keys: Keys;
  /** Card numbers are replaced by their keyed hash before an event is queued. */
  cards: CardHasher;
  pipeline: RiskmonConfig['pipeline'];
  /** Ask workers to return per-event results (replay). @defaultValue false */
  reply?: boolean;
  /** Called with every job added, in order. */
  onJob?: (job: Job<BatchJobData>, shard: number, events: number) => void;
  /** Refuse new events while this many jobs wait on one shard (backpressure); 0 disables. @defaultValue 0 */
  maxWaitingJobsPerShard?: number;
}

interface Buffer {
  events: unknown[];
  firstAt: number;
  timer: NodeJS.Timeout | undefined;
}

/** How often an active producer reads how many batches wait on each shard (one LLEN-like call per shard). */
const BACKLOG_POLL_MS = 25;
/** Completed batches kept per shard queue for a look in the dashboard. */
const COMPLETED_JOBS_KEPT = 100;
/** A producer that sent nothing for this long stops polling. */
const BACKLOG_IDLE_MS = 1_000;

export class BackpressureError extends Error {
  override name = 'BackpressureError';
}

/** Creates the shard queues of a namespace and makes each one run one job at a time across all workers. */
export async function openRiskQueues(connection: Redis, keys: Keys, shards: number): Promise<Queue<BatchJobData>[]> {
  const queues = Array.from(
    { length: shards },
    (_, shard) => new Queue<BatchJobData>(riskQueueName(shard), { connection, prefix: keys.queuePrefix }),
  );
  await Promise.all(queues.map((q) => q.setGlobalConcurrency(1)));
  return queues;
}

export class EventProducer {
  private readonly buffers: Buffer[];
  private readonly tails: Promise<unknown>[];
  /** Shards whose queue had batches waiting at the last poll: workers are behind there. */
  private readonly behind: boolean[];
  private backlogTimer: NodeJS.Timeout | undefined;
  private lastSendAt = 0;
  private polling = false;
  private failure: Error | undefined;
  sent = 0;

  private constructor(
    private readonly queues: Queue<BatchJobData>[],
    private readonly options: ProducerOptions,
  ) {
    this.buffers = queues.map(() => ({ events: [], firstAt: 0, timer: undefined }));
    this.tails = queues.map(() => Promise.resolve());
    this.behind = queues.map(() => false);
  }

  static async open(options: ProducerOptions): Promise<EventProducer> {
    const queues = await openRiskQueues(options.connection, options.keys, options.pipeline.shards);
    return new EventProducer(queues, options);
  }

  /** Buffers a validated event; it is on its queue after the next `flush` (or within `lingerMs`). */
  send(event: RiskEvent): void {
    if (this.failure) throw this.failure;
    const shard = shardOf(event.userId, this.queues.length);
    const buf = this.buffers[shard]!;
    if (buf.events.length === 0) {
      buf.firstAt = Date.now();
      this.lastSendAt = buf.firstAt;
      this.watchBacklog();
      const { lingerMs, busyLingerMs } = this.options.pipeline;
      // Behind: the batch would wait in the queue anyway, so let it grow; bigger batches cost less per event,
      // which is how workers catch up instead of drowning in small jobs.
      const linger = this.behind[shard] ? Math.max(lingerMs, busyLingerMs) : lingerMs;
      if (linger > 0) {
        buf.timer = setTimeout(() => this.closeBatch(shard), linger);
      }
    }
    buf.events.push(event.type === 'charge' ? tokenizeCharge(event, this.options.cards) : event);
    this.sent++;
    if (buf.events.length >= this.options.pipeline.maxBatch || this.options.pipeline.lingerMs === 0) this.closeBatch(shard);
  }

  /** Adds every buffered batch and waits until all jobs are on their queues. */
  async flush(): Promise<void> {
    this.queues.forEach((_, shard) => this.closeBatch(shard));
    await Promise.all(this.tails);
    if (this.failure) throw this.failure;
  }

  /** Jobs waiting (not yet taken) over all shard queues. */
  async waiting(): Promise<number> {
    const counts = await Promise.all(this.queues.map((q) => q.getWaitingCount()));
    return counts.reduce((a, b) => a + b, 0);
  }

  async close(): Promise<void> {
    if (this.backlogTimer) clearTimeout(this.backlogTimer);
    this.backlogTimer = undefined;
    await this.flush().catch(() => undefined);
    await Promise.all(this.queues.map((q) => q.close()));
  }

  /** Polls the shards' backlogs while events flow; stops by itself when the producer goes idle. */
  private watchBacklog(): void {
    if (this.backlogTimer || this.options.pipeline.busyLingerMs <= this.options.pipeline.lingerMs) return;
    const poll = async () => {
      if (this.polling) return;
      this.polling = true;
      try {
        const waiting = await Promise.all(this.queues.map((q) => q.getWaitingCount()));
        // One batch waiting is normal (it was just added); two or more is a backlog.
        waiting.forEach((n, shard) => (this.behind[shard] = n >= 2));
      } catch {
        // Leave the last reading; adds report Redis failures.
      } finally {
        this.polling = false;
      }
    };
    const tick = () => {
      if (Date.now() - this.lastSendAt > BACKLOG_IDLE_MS) {
        this.backlogTimer = undefined;
        this.behind.fill(false);
        return;
      }
      void poll();
      this.backlogTimer = setTimeout(tick, BACKLOG_POLL_MS).unref();
    };
    this.backlogTimer = setTimeout(tick, BACKLOG_POLL_MS).unref();
  }

  private closeBatch(shard: number): void {
    const buf = this.buffers[shard]!;
    if (buf.timer) clearTimeout(buf.timer);
    buf.timer = undefined;
    if (buf.events.length === 0) return;
    const data: BatchJobData = { v: 1, events: buf.events, enqueuedAt: buf.firstAt, reply: this.options.reply };
    buf.events = [];
    const queue = this.queues[shard]!;
    // Chain per shard: the next add starts only after this one is acknowledged, so job order = send order.
    this.tails[shard] = this.tails[shard]!.then(async () => {
      if (this.failure) return;
      try {
        const limit = this.options.maxWaitingJobsPerShard ?? 0;
        if (limit > 0 && (await queue.getWaitingCount()) >= limit) {
          throw new BackpressureError(`shard ${shard} has ${limit} or more batches waiting: workers are behind`);
        }
        const job = await queue.add(BATCH_JOB_NAME, data, {
          // A completed job still holds its whole batch: at full speed 5,000 per queue would be gigabytes. Replays
          // read every job's result after the last add, so they keep more.
          removeOnComplete: { age: 3_600, count: this.options.reply ? 5_000 : COMPLETED_JOBS_KEPT },
          removeOnFail: false,
        });
        this.options.onJob?.(job, shard, data.events.length);
      } catch (e) {
        this.failure = e as Error;
      }
    });
  }
}

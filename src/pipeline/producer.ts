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
  /**
   * Bounded mode: batches allowed to wait on one shard (queued plus not yet acknowledged by Redis). Past it, `send`
   * refuses that shard's events with a BackpressureError and `sendWhenReady` waits for room; 0 is unbounded.
   * @defaultValue 0
   */
  maxWaitingJobsPerShard?: number;
  /** How often a sending producer reads the queue depths (busy linger, bounded mode), ms. @defaultValue 25 */
  depthCheckMs?: number;
}

interface Buffer {
  events: unknown[];
  firstAt: number;
  timer: NodeJS.Timeout | undefined;
}

/** Completed batches kept per shard queue for a look in the dashboard. */
const COMPLETED_JOBS_KEPT = 100;
/** A producer that sent nothing for this long stops reading queue depths. */
const DEPTH_IDLE_MS = 1_000;

/** The producer is over its bound for a shard: the event was NOT accepted; send it again later. */
export class BackpressureError extends Error {
  override name = 'BackpressureError';
}

/** Redis refused or could not take a batch. The producer stops; resend everything since the last good flush(). */
export class EnqueueError extends Error {
  override name = 'EnqueueError';
}

/** Creates the shard queues of a namespace and makes each one run one job at a time across all workers. */
export async function openRiskQueues(connection: Redis, keys: Keys, shards: number): Promise<Queue<BatchJobData>[]> {
  const queues = Array.from({ length: shards }, (_, shard) => {
    const queue = new Queue<BatchJobData>(riskQueueName(shard), { connection, prefix: keys.queuePrefix });
    // Connection errors surface through the calls that fail; unheard, BullMQ would print each reconnect attempt.
    queue.on('error', () => undefined);
    return queue;
  });
  await Promise.all(queues.map((q) => q.setGlobalConcurrency(1)));
  return queues;
}

export class EventProducer {
  private readonly buffers: Buffer[];
  private readonly tails: Promise<unknown>[];
  private failure: Error | undefined;
  /** Waiting batches per shard as last read from Redis, plus batches this producer added or has in flight since. */
  private readonly depth: { read: number; added: number; inFlight: number }[];
  private depthTimer: NodeJS.Timeout | undefined;
  private lastSendAt = 0;
  private depthRead: Promise<void> | undefined;
  private lastConnectionError: Error | undefined;
  sent = 0;

  private constructor(
    private readonly queues: Queue<BatchJobData>[],
    private readonly options: ProducerOptions,
  ) {
    this.buffers = queues.map(() => ({ events: [], firstAt: 0, timer: undefined }));
    this.tails = queues.map(() => Promise.resolve());
    this.depth = queues.map(() => ({ read: 0, added: 0, inFlight: 0 }));
    // Without a listener BullMQ prints every reconnect attempt; the cause goes into the EnqueueError instead.
    for (const q of queues) q.on('error', (e) => (this.lastConnectionError = e));
  }

  private get bound(): number {
    return this.options.maxWaitingJobsPerShard ?? 0;
  }

  static async open(options: ProducerOptions): Promise<EventProducer> {
    const queues = await openRiskQueues(options.connection, options.keys, options.pipeline.shards).catch((e: Error) => {
      throw new EnqueueError(`cannot open the risk queues: ${e.message} (is Redis running, and REDIS_URL right?)`, { cause: e });
    });
    const producer = new EventProducer(queues, options);
    if (producer.bound > 0) await producer.readDepths();
    return producer;
  }

  /**
   * Buffers a validated event; it is on its queue after the next `flush` (or within `lingerMs`).
   * @throws BackpressureError in bounded mode when the event's shard is full (the event is not accepted).
   * @throws EnqueueError once Redis failed to take a batch.
   */
  send(event: RiskEvent): void {
    if (this.failure) throw this.failure;
    const shard = shardOf(event.userId, this.queues.length);
    if (this.bound > 0 && this.isFull(shard)) {
      throw new BackpressureError(
        `shard ${shard} has ${this.bound} or more batches waiting (workers are behind): event ${JSON.stringify(event.eventId)} was not accepted; send it again later`,
      );
    }
    const buf = this.buffers[shard]!;
    if (buf.events.length === 0) {
      buf.firstAt = Date.now();
      this.lastSendAt = buf.firstAt;
      this.watchDepths();
      const { lingerMs, busyLingerMs } = this.options.pipeline;
      // Behind (two or more batches already waiting): this batch would wait in the queue anyway, so let it grow;
      // bigger batches cost less per event, which is how workers catch up instead of drowning in small jobs.
      const linger = this.depth[shard]!.read >= 2 ? Math.max(lingerMs, busyLingerMs) : lingerMs;
      if (linger > 0) {
        buf.timer = setTimeout(() => this.closeBatch(shard), linger);
      }
    }
    buf.events.push(event.type === 'charge' ? tokenizeCharge(event, this.options.cards) : event);
    this.sent++;
    if (buf.events.length >= this.options.pipeline.maxBatch || this.options.pipeline.lingerMs === 0) this.closeBatch(shard);
  }

  /** Bounded mode: waits until the event's shard has room (re-reading depths), then sends it. */
  async sendWhenReady(event: RiskEvent, timeoutMs = Infinity): Promise<void> {
    const shard = shardOf(event.userId, this.queues.length);
    const deadline = Date.now() + timeoutMs;
    while (this.bound > 0 && this.isFull(shard) && !this.failure) {
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, this.options.depthCheckMs ?? 25));
      await this.readDepths();
    }
    this.send(event);
  }

  private isFull(shard: number): boolean {
    const d = this.depth[shard]!;
    return d.read + d.added + d.inFlight >= this.bound;
  }

  /** Reads the depths every `depthCheckMs` while events flow (when anything uses them); stops when idle. */
  private watchDepths(): void {
    const { lingerMs, busyLingerMs } = this.options.pipeline;
    if (this.depthTimer || (this.bound === 0 && busyLingerMs <= lingerMs)) return;
    const tick = () => {
      if (Date.now() - this.lastSendAt > DEPTH_IDLE_MS) {
        this.depthTimer = undefined;
        return;
      }
      void this.readDepths();
      this.depthTimer = setTimeout(tick, this.options.depthCheckMs ?? 25).unref();
    };
    this.depthTimer = setTimeout(tick, this.options.depthCheckMs ?? 25).unref();
  }

  /** One round trip: the wait-list length of every shard. Jobs this producer added meanwhile stay counted. */
  private readDepths(): Promise<void> {
    this.depthRead ??= (async () => {
      const addedBefore = this.depth.map((d) => d.added);
      const pipe = this.options.connection.pipeline();
      for (const q of this.queues) pipe.llen(q.keys.wait!);
      const replies = await pipe.exec().catch(() => null);
      replies?.forEach(([err, n], shard) => {
        if (err) return;
        const d = this.depth[shard]!;
        d.read = Number(n);
        d.added -= addedBefore[shard]!;
      });
    })().finally(() => (this.depthRead = undefined));
    return this.depthRead;
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
    clearTimeout(this.depthTimer);
    this.depthTimer = undefined;
    await this.flush().catch(() => undefined);
    await Promise.all(this.queues.map((q) => q.close()));
  }

  private closeBatch(shard: number): void {
    const buf = this.buffers[shard]!;
    if (buf.timer) clearTimeout(buf.timer);
    buf.timer = undefined;
    if (buf.events.length === 0) return;
    const data: BatchJobData = { v: 1, events: buf.events, enqueuedAt: buf.firstAt, reply: this.options.reply };
    buf.events = [];
    const queue = this.queues[shard]!;
    const depth = this.depth[shard]!;
    depth.inFlight++;
    // Chain per shard: the next add starts only after this one is acknowledged, so job order = send order.
    this.tails[shard] = this.tails[shard]!.then(async () => {
      try {
        if (this.failure) return;
        const job = await queue.add(BATCH_JOB_NAME, data, {
          // A completed job still holds its whole batch: at full speed 5,000 per queue would be gigabytes. Replays
          // read every job's result after the last add, so they keep more.
          removeOnComplete: { age: 3_600, count: this.options.reply ? 5_000 : COMPLETED_JOBS_KEPT },
          removeOnFail: false,
        });
        depth.added++;
        this.options.onJob?.(job, shard, data.events.length);
      } catch (e) {
        const cause = (e as Error).message + (this.lastConnectionError ? ` (last connection error: ${this.lastConnectionError.message})` : '');
        this.failure = new EnqueueError(
          `could not enqueue a batch of ${data.events.length} events on shard ${shard}: ${cause}. ` +
            'Nothing sent after the last successful flush() is guaranteed to be queued: send it again (eventIds make that safe).',
          { cause: e },
        );
      } finally {
        depth.inFlight--;
      }
    });
  }
}

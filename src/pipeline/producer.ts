/**
 * The way events enter the pipeline. The producer is where production order is known, so it owns the clock and
 * the eventId claims (contract v1.1): each event is checked against the producer's clock (the wall clock live,
 * the largest occurredAt accepted so far in a replay), its eventId is claimed in send order, and the accepted
 * events go to their user's shard queue stamped with that clock. Rejected ones are dead-lettered with their reason.
 *
 * Events are carried many per job (micro-batches closed by size or by a short linger), because one BullMQ job per
 * event costs as much Redis time as all the rules together. Jobs of one shard are added strictly in order.
 */
import { ARCHIVE_GROUP } from '../archive/archiver.ts';
import { randomBytes } from 'node:crypto';
import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RiskmonConfig } from '../config.ts';
import { DeadLetters } from '../deadletter/dead-letters.ts';
import { claimDigest, claimLayout, conflictReason, EventClaims } from '../decisions/claims.ts';
import { tokenizeCharge, type CardHasher } from '../events/card.ts';
import { aheadOfWallProblem, eventTimeLimits, eventTimeProblem, type EventTimeLimits } from '../events/event-time.ts';
import { parseInstant } from '../events/instant.ts';
import { EVENT_REJECT_LABELS, type EventRejectLabel, type QueuedCharge, type RiskEvent } from '../events/schema.ts';
import { Keys, riskQueueName } from '../redis/keys.ts';
import { BATCH_JOB_NAME, type BatchJobData } from './batch-job.ts';
import { shardOf } from './shards.ts';
import { masterNodes, replicaShortfalls, type RedisClient, SlotPipeline } from '../redis/client.ts';

/**
 * Whose clock decides which events are accepted: "wall" (Date.now(), live), "replay" (the largest occurredAt of the
 * events accepted so far, in send order: a file replays the same whenever it runs), or a function (tests).
 */
export type ProducerClock = 'wall' | 'replay' | (() => number);

/** A valid event the producer refused (it was dead-lettered and claimed nothing). */
export interface ProducerRejection {
  /** What the caller passed to `send` with the event (a line number, say). */
  tag: unknown;
  eventId: string;
  reason: string;
  kind: ProducerRejectReason;
}

export interface ProducerOptions {
  connection: RedisClient;
  keys: Keys;
  /** Card numbers are replaced by their keyed hash before an event is queued. */
  cards: CardHasher;
  config: Pick<RiskmonConfig, 'pipeline' | 'events' | 'retention'> & Partial<Pick<RiskmonConfig, 'archive'>>;
  /** @defaultValue "wall" */
  clock?: ProducerClock;
  /** Dead-letter source of a refused event (unique per input position). @defaultValue "producer:<id>:<n>" */
  rejectionSource?: (tag: unknown, n: number) => string;
  /** Called for every valid event refused (after it is dead-lettered). */
  onRejected?: (rejection: ProducerRejection) => void;
  /** Ask workers to return per-event results (replay). @defaultValue false */
  reply?: boolean;
  /** Called with every job added, in order, with the tags of its events. */
  onJob?: (job: Job<BatchJobData>, shard: number, tags: unknown[]) => void;
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
  clocks: number[];
  tags: unknown[];
  firstAt: number;
  timer: NodeJS.Timeout | undefined;
}

/** An event sent and not yet claimed. */
interface Pending {
  event: Exclude<RiskEvent, { type: 'charge' }> | QueuedCharge;
  occurredAtMs: number;
  tag: unknown;
  sentAt: number;
  shard: number;
  /** The clock it is accepted at, and the replay clock before it (set by the claim round). */
  clock: number;
  clockBefore: number;
}

/** Completed batches kept per shard queue for a look in the dashboard. */
const COMPLETED_JOBS_KEPT = 100;
/**
 * Why a producer refused an input before queueing (label `reason` of riskmon_producer_rejected_events, a count in
 * Redis shared by every producer process): a valid event refused for its time or its eventId, or a line of a file
 * that is no event (produce and replay).
 */
export const PRODUCER_REJECT_REASONS = ['event_time', 'id_conflict', ...EVENT_REJECT_LABELS] as const;
export type ProducerRejectReason = (typeof PRODUCER_REJECT_REASONS)[number];

/** Counts a line that is no event (dead-lettered by its reader) with the producers' refusals. */
export function countLineRejection(redis: RedisClient, keys: Keys, label: EventRejectLabel): Promise<number> {
  return redis.hincrby(keys.producerRejections, label, 1);
}

/** Largest claim round started by the number of events sent (a round is split into script calls of 1,000). */
const MAX_ROUND_EVENTS = 20_000;
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
export async function openRiskQueues(connection: RedisClient, keys: Keys, shards: number): Promise<Queue<BatchJobData>[]> {
  const queues = Array.from({ length: shards }, (_, shard) => {
    const queue = new Queue<BatchJobData>(riskQueueName(shard), { connection, prefix: keys.queuePrefix(riskQueueName(shard)) });
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
  /**
   * Per shard: waiting batches as last read from Redis, batches added since and in flight, and the batches that
   * events still being claimed will make (sent and not in a round yet; rounds under way).
   */
  private readonly depth: { read: number; added: number; inFlight: number; unclaimed: number; inRounds: number }[];
  /** archive.backpressureEntries when archiving (else 0): a shard with this many decisions not archived takes nothing. */
  private readonly archiveLimit: number;
  /** Each shard's decisions not yet archived, as last read (0 for a stream no archiver reads). */
  private readonly streamLength: number[];
  private depthTimer: NodeJS.Timeout | undefined;
  private lastSendAt = 0;
  private depthRead: Promise<void> | undefined;
  private lastConnectionError: Error | undefined;
  private readonly pipelineConfig: RiskmonConfig['pipeline'];
  private readonly limits: EventTimeLimits;
  private readonly claims: EventClaims;
  /** Refused events are recorded here with their reason (on the producer's connection: one round trip). */
  private readonly deadLetters: DeadLetters;
  private readonly id = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  /** Events sent, waiting for the next claim round. */
  private pending: Pending[] = [];
  /** The claim rounds, one after the other: claims are made in send order. */
  private claiming: Promise<void> = Promise.resolve();
  private claimTimer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  /** Events sent that start a claim round without waiting for the current run of sends to end. */
  private readonly roundSize: number;
  /** The replay clock: the largest occurredAt of the events accepted so far. */
  private replayClock = -Infinity;
  private rejectedCount = 0;
  /** pipeline.replicaAcks: the connections asked at the last flush, and `sent` then. */
  private confirmedNodes = new Set<Redis>();
  private sentAtLastConfirm = 0;
  /** Events handed to `send`. */
  sent = 0;
  /** Events accepted (claimed and queued, or about to be). */
  accepted = 0;

  private constructor(
    private readonly queues: Queue<BatchJobData>[],
    private readonly options: ProducerOptions,
  ) {
    this.pipelineConfig = options.config.pipeline;
    this.limits = eventTimeLimits(options.config.events);
    this.roundSize = Math.min(MAX_ROUND_EVENTS, options.config.pipeline.maxBatch * options.config.pipeline.shards);
    this.claims = new EventClaims(options.connection, options.keys, claimLayout(options.config));
    this.deadLetters = new DeadLetters(options.connection, options.keys, options.config.retention.deadLetterMaxLen);
    this.buffers = queues.map(() => ({ events: [], clocks: [], tags: [], firstAt: 0, timer: undefined }));
    this.tails = queues.map(() => Promise.resolve());
    this.depth = queues.map(() => ({ read: 0, added: 0, inFlight: 0, unclaimed: 0, inRounds: 0 }));
    const { archive, retention } = options.config;
    // Below the stream's cap, whatever the setting: the cap would drop decisions the archive has not taken.
    this.archiveLimit = archive?.enabled ? Math.min(archive.backpressureEntries, Math.floor(retention.decisionStreamMaxLen * 0.8)) : 0;
    this.streamLength = queues.map(() => 0);
    // Without a listener BullMQ prints every reconnect attempt; the cause goes into the EnqueueError instead.
    for (const q of queues) q.on('error', (e) => (this.lastConnectionError = e));
  }

  private get bound(): number {
    return this.options.maxWaitingJobsPerShard ?? 0;
  }

  /** Valid events refused so far (event time, eventId conflicts). */
  get rejected(): number {
    return this.rejectedCount;
  }

  static async open(options: ProducerOptions): Promise<EventProducer> {
    const queues = await openRiskQueues(options.connection, options.keys, options.config.pipeline.shards).catch((e: Error) => {
      throw new EnqueueError(`cannot open the risk queues: ${e.message} (is Redis running, and REDIS_URL right?)`, { cause: e });
    });
    const producer = new EventProducer(queues, options);
    if (producer.bound > 0 || producer.archiveLimit > 0) await producer.readDepths();
    return producer;
  }

  /**
   * Takes a validated event: it is checked against the clock and its eventId claimed (in send order), then queued;
   * it is on its queue after the next `flush` (or within about `lingerMs`). A refused event is dead-lettered and
   * reported to `onRejected` with `tag`. `occurredAtMs`, when the caller parsed the event, is its occurredAt instant.
   * @throws BackpressureError in bounded mode when the event's shard is full (the event is not accepted).
   * @throws EnqueueError once Redis failed to take a claim or a batch.
   */
  send(event: RiskEvent, tag?: unknown, occurredAtMs?: number): void {
    if (this.failure) throw this.failure;
    const shard = shardOf(event.userId, this.queues.length);
    if (this.bound > 0 && this.isFull(shard)) {
      throw new BackpressureError(
        `shard ${shard} has ${this.bound} or more batches waiting (workers are behind): event ${JSON.stringify(event.eventId)} was not accepted; send it again later`,
      );
    }
    if (this.archiveBehind(shard)) {
      // Read again now: the next send must not be refused on this reading once the archive has caught up.
      void this.readDepths();
      throw new BackpressureError(
        `shard ${shard}'s decision stream holds ${this.streamLength[shard]} entries the archive has not taken (limit ${this.archiveLimit}: archive.backpressureEntries, at most 80% of retention.decisionStreamMaxLen; ` +
          `is the archiver running and PostgreSQL reachable?): event ${JSON.stringify(event.eventId)} was not accepted; send it again later`,
      );
    }
    let ms = occurredAtMs;
    if (ms === undefined) {
      const at = parseInstant(event.occurredAt);
      // The schema validated occurredAt: this cannot fail for a parsed event.
      if (!at.ok) throw new TypeError(`send() takes validated events: ${at.reason}`);
      ms = at.ms;
    }
    const queued = event.type === 'charge' ? tokenizeCharge(event, this.options.cards) : event;
    this.pending.push({ event: queued, occurredAtMs: ms, tag, sentAt: Date.now(), shard, clock: 0, clockBefore: 0 });
    this.depth[shard]!.unclaimed++;
    this.sent++;
    // A round fills every shard's batch at full speed: smaller rounds, each a round trip, would let the linger close
    // batches half full (twice the jobs, each with BullMQ's cost).
    if (this.pending.length >= this.roundSize) this.claimNow();
    else if (this.claimTimer === undefined) {
      // Half the linger: the events sent meanwhile share one round trip, and the batch still closes a linger after
      // its first event (its timer counts from when that was sent). Without a linger, after this run of sends.
      const delay = Math.floor(this.pipelineConfig.lingerMs / 2);
      this.claimTimer = delay > 0 ? setTimeout(() => this.claimNow(), delay) : setImmediate(() => this.claimNow());
    }
  }

  /** Starts a claim round for everything sent so far (after the rounds before it). */
  private claimNow(): void {
    if (this.claimTimer !== undefined) {
      clearTimeout(this.claimTimer as NodeJS.Timeout);
      clearImmediate(this.claimTimer as NodeJS.Immediate);
      this.claimTimer = undefined;
    }
    if (this.pending.length === 0) return;
    const items = this.pending;
    this.pending = [];
    // The batches this round may make per shard, counted until it has routed them (see isFull).
    const perShard = new Map<number, number>();
    for (const item of items) perShard.set(item.shard, (perShard.get(item.shard) ?? 0) + 1);
    const { lingerMs, maxBatch } = this.pipelineConfig;
    const batches = new Map([...perShard].map(([shard, n]) => [shard, lingerMs === 0 ? n : Math.ceil(n / maxBatch)]));
    for (const [shard, n] of perShard) {
      this.depth[shard]!.unclaimed -= n;
      this.depth[shard]!.inRounds += batches.get(shard)!;
    }
    this.claiming = this.claiming.then(async () => {
      try {
        if (!this.failure) await this.claimRound(items);
      } catch (e) {
        // A caller's callback threw: the chain must stay usable, and nothing after this round is guaranteed.
        this.fail('a claim round failed', e);
      } finally {
        for (const [shard, n] of batches) this.depth[shard]!.inRounds -= n;
      }
    });
  }

  /**
   * Checks event time and claims eventIds for `items`, in order, then routes the accepted ones to their shards.
   * In a replay the clock moves only with accepted events: when an event refused for its eventId had moved the
   * clock, the events after it are checked again with the clock it had before (those refused for their age
   * claimed nothing; those accepted stay accepted, and claiming again with the same content is a repeat).
   */
  private async claimRound(items: Pending[]): Promise<void> {
    const replay = this.options.clock === 'replay';
    const clockFn = typeof this.options.clock === 'function' ? this.options.clock : Date.now;
    let start = 0;
    while (start < items.length) {
      // A replay's clock is its events' own, but never ahead of the wall clock: those events have not happened.
      const wall = clockFn();
      let clock = this.replayClock;
      // Per event, no objects: this runs for every event the producer sends.
      const candidates: number[] = [];
      const ids: string[] = [];
      const contents: string[] = [];
      const clocks: number[] = [];
      // Replay: "1" for an event that moves the clock, whose conflict stops the claims after it (see below).
      const stops: string[] = [];
      const refused: { index: number; reason: string }[] = [];
      for (let i = start; i < items.length; i++) {
        const item = items[i]!;
        const at = replay ? Math.max(clock, item.occurredAtMs) : wall;
        const problem = (replay ? aheadOfWallProblem(item.occurredAtMs, wall, this.limits) : undefined) ?? eventTimeProblem(item.event, item.occurredAtMs, at, this.limits);
        if (problem) {
          refused.push({ index: i, reason: problem });
          continue;
        }
        item.clock = at;
        item.clockBefore = clock;
        candidates.push(i);
        ids.push(item.event.eventId);
        contents.push(claimDigest(item.event, item.occurredAtMs));
        clocks.push(at);
        if (replay) {
          stops.push(at > clock ? '1' : '0');
          clock = at;
        }
      }
      let answers: unknown[] = [];
      if (candidates.length) {
        try {
          answers = await this.claims.claimInOrder(ids, contents, clocks, stops.join(''));
        } catch (e) {
          this.fail(`could not claim the eventIds of ${candidates.length} events`, e);
          return;
        }
      }
      let redoFrom = items.length;
      let acceptedUpTo = candidates.length;
      const conflicts: { index: number; reason: string }[] = [];
      for (let k = 0; k < answers.length; k++) {
        const claim = this.claims.interpret(answers[k], contents[k]!);
        if (claim.kind !== 'conflict') continue;
        const index = candidates[k]!;
        const item = items[index]!;
        conflicts.push({ index, reason: conflictReason(claim.fields) });
        if (replay && item.clock > item.clockBefore) {
          // This refused event had moved the replay clock: everything after it is decided again (the claims
          // stopped there, so those events claimed nothing yet).
          clock = item.clockBefore;
          redoFrom = index + 1;
          acceptedUpTo = k;
          break;
        }
      }
      if (acceptedUpTo === candidates.length && answers.length < candidates.length) {
        this.fail(`could not claim the eventIds of ${candidates.length} events`, new Error('the claims stopped short'));
        return;
      }
      this.replayClock = clock;
      const conflicting = new Set(conflicts.map((c) => c.index));
      for (let k = 0; k < acceptedUpTo; k++) {
        const index = candidates[k]!;
        if (!conflicting.has(index)) {
          this.route(items[index]!);
          this.accepted++;
        }
      }
      // Time refusals after a redo point are looked at again in the next pass.
      await this.refuse([
        ...refused.filter((r) => r.index < redoFrom).map((r) => ({ item: items[r.index]!, reason: r.reason, kind: 'event_time' as const })),
        ...conflicts.map((r) => ({ item: items[r.index]!, reason: r.reason, kind: 'id_conflict' as const })),
      ]);
      start = redoFrom;
    }
  }

  /** Dead-letters refused events (in one round trip), counts them in Redis and tells the caller. */
  private async refuse(refused: { item: Pending; reason: string; kind: ProducerRejectReason }[]): Promise<void> {
    if (refused.length === 0) return;
    const { keys, connection } = this.options;
    const { deadLetters } = this;
    const pipe = connection.pipeline();
    for (const r of refused) {
      const n = ++this.rejectedCount;
      const source = this.options.rejectionSource?.(r.item.tag, n) ?? `producer:${this.id}:${n}`;
      deadLetters.record(pipe, { source, reason: r.reason, raw: r.item.event });
      pipe.hincrby(keys.producerRejections, r.kind, 1);
    }
    try {
      await pipe.exec();
    } catch (e) {
      this.fail(`could not dead-letter ${refused.length} refused events`, e);
      return;
    }
    for (const r of refused) this.options.onRejected?.({ tag: r.item.tag, eventId: r.item.event.eventId, reason: r.reason, kind: r.kind });
  }

  /** Puts an accepted event into its shard's batch, with the clock it was accepted at. */
  private route(item: Pending): void {
    const { shard } = item;
    const buf = this.buffers[shard]!;
    if (buf.events.length === 0) {
      buf.firstAt = item.sentAt;
      this.lastSendAt = Date.now();
      this.watchDepths();
      const { lingerMs, busyLingerMs } = this.pipelineConfig;
      // Behind (two or more batches already waiting): this batch would wait in the queue anyway, so let it grow;
      // bigger batches cost less per event, which is how workers catch up instead of drowning in small jobs.
      const linger = this.depth[shard]!.read >= 2 ? Math.max(lingerMs, busyLingerMs) : lingerMs;
      if (linger > 0) {
        buf.timer = setTimeout(() => this.closeBatch(shard), Math.max(0, linger - (Date.now() - buf.firstAt)));
      }
    }
    buf.events.push(item.event);
    buf.clocks.push(item.clock);
    buf.tags.push(item.tag);
    if (buf.events.length >= this.pipelineConfig.maxBatch || this.pipelineConfig.lingerMs === 0) this.closeBatch(shard);
  }

  private fail(what: string, e: unknown): void {
    const cause = (e as Error).message + (this.lastConnectionError ? ` (last connection error: ${this.lastConnectionError.message})` : '');
    this.failure ??= new EnqueueError(
      `${what}: ${cause}. Nothing sent after the last successful flush() is guaranteed to be queued: send it again (eventIds make that safe).`,
      { cause: e },
    );
  }

  /** Waits until the event's shard has room (bounded mode) and its archive is not behind (re-reading), then sends it. */
  async sendWhenReady(event: RiskEvent, timeoutMs = Infinity, tag?: unknown): Promise<void> {
    const shard = shardOf(event.userId, this.queues.length);
    const deadline = Date.now() + timeoutMs;
    while (((this.bound > 0 && this.isFull(shard)) || this.archiveBehind(shard)) && !this.failure) {
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, this.options.depthCheckMs ?? 25));
      await this.readDepths();
    }
    this.send(event, tag);
  }

  private archiveBehind(shard: number): boolean {
    return this.archiveLimit > 0 && this.streamLength[shard]! >= this.archiveLimit;
  }

  private isFull(shard: number): boolean {
    const d = this.depth[shard]!;
    // Events still being claimed will make batches too, and so will the open batch once its linger ends: all are
    // counted before they exist, so the bound holds (without a linger, each event is its own batch).
    const { lingerMs, maxBatch } = this.pipelineConfig;
    const open = this.buffers[shard]!.events.length > 0 ? 1 : 0;
    const unclaimed = lingerMs === 0 ? d.unclaimed : Math.ceil(d.unclaimed / maxBatch);
    return d.read + d.added + d.inFlight + open + unclaimed + d.inRounds >= this.bound;
  }

  /** Reads the depths every `depthCheckMs` while events flow (when anything uses them); stops when idle. */
  private watchDepths(): void {
    const { lingerMs, busyLingerMs } = this.pipelineConfig;
    if (this.depthTimer || (this.bound === 0 && this.archiveLimit === 0 && busyLingerMs <= lingerMs)) return;
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

  /**
   * One round trip: the wait-list length of every shard (jobs this producer added meanwhile stay counted) and, while
   * archiving, the length of every shard's decision stream.
   */
  private readDepths(): Promise<void> {
    this.depthRead ??= (async () => {
      const addedBefore = this.depth.map((d) => d.added);
      const pipe = new SlotPipeline(this.options.connection);
      for (const q of this.queues) pipe.add(q.keys.wait!, (p) => p.llen(q.keys.wait!));
      if (this.archiveLimit > 0) {
        this.queues.forEach((_, shard) => {
          const key = this.options.keys.decisionStream(shard);
          pipe.add(key, (p) => p.xinfo('GROUPS', key).xlen(key));
        });
      }
      const replies = await pipe.exec().catch(() => null);
      replies?.forEach(([err, n], i) => {
        if (i >= this.queues.length) {
          if ((i - this.queues.length) % 2 === 0) {
            const shard = (i - this.queues.length) / 2;
            this.streamLength[shard] = err ? 0 : unarchived(n as unknown[][], Number(replies[i + 1]?.[1] ?? 0));
          }
          return;
        }
        if (err) return;
        const d = this.depth[i]!;
        d.read = Number(n);
        d.added -= addedBefore[i]!;
      });
    })().finally(() => (this.depthRead = undefined));
    return this.depthRead;
  }

  /** Claims everything sent, adds every buffered batch and waits until all jobs are on their queues. */
  async flush(): Promise<void> {
    this.claimNow();
    await this.claiming;
    this.queues.forEach((_, shard) => this.closeBatch(shard));
    await Promise.all(this.tails);
    if (!this.failure) await this.confirmReplicated();
    if (this.failure) throw this.failure;
  }

  /**
   * pipeline.replicaAcks: waits until that many replicas of every master hold what this producer wrote (claims,
   * jobs, dead letters), so what flush() acknowledges survives the failover of a master. The masters of the last
   * flush are asked again: one that has failed or left the cluster since may have taken writes with it, and fails
   * the flush.
   */
  private async confirmReplicated(): Promise<void> {
    const { replicaAcks, replicaAckTimeoutMs } = this.pipelineConfig;
    if (replicaAcks === 0 || this.sent === this.sentAtLastConfirm) return;
    // The shard queues write on this same connection (BullMQ shares a connection it is given), and WAIT counts per
    // connection: asking its masters covers every write of this producer.
    const current = new Set(masterNodes(this.options.connection));
    const short = await replicaShortfalls(new Set([...this.confirmedNodes, ...current]), replicaAcks, replicaAckTimeoutMs);
    this.confirmedNodes = current;
    if (short.length) {
      const detail = short.map((n) => `${n.node} ${n.confirmed < 0 ? `could not be asked (${n.error})` : `had ${n.confirmed}`}`).join(', ');
      this.fail(`could not confirm within ${replicaAckTimeoutMs} ms that ${replicaAcks} ${replicaAcks === 1 ? 'replica holds' : 'replicas hold'} what was sent`, new Error(detail));
      return;
    }
    this.sentAtLastConfirm = this.sent;
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
    const first = buf.clocks[0]!;
    // One number when the whole batch shares a clock (a live batch mostly does): a shorter payload to write and read.
    const clocks = buf.clocks.every((c) => c === first) ? { clock: first } : { clocks: buf.clocks };
    const data: BatchJobData = { v: 2, events: buf.events, ...clocks, claimed: true, enqueuedAt: buf.firstAt, reply: this.options.reply };
    const tags = buf.tags;
    buf.events = [];
    buf.clocks = [];
    buf.tags = [];
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
        this.options.onJob?.(job, shard, tags);
      } catch (e) {
        this.fail(`could not enqueue a batch of ${data.events.length} events on shard ${shard}`, e);
      } finally {
        depth.inFlight--;
      }
    });
  }
}

/**
 * Decisions of a stream the archive has not taken: its `archive` group's undelivered and unacknowledged entries
 * (the whole stream when Redis cannot say how far behind the group is). A stream without the group is not
 * archived (archiving is off, or no archiver has started yet): nothing to wait for.
 */
function unarchived(groups: unknown[][], length: number): number {
  for (const flat of groups) {
    const g: Record<string, unknown> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) g[String(flat[i])] = flat[i + 1];
    if (g.name !== ARCHIVE_GROUP) continue;
    return g.lag === null || g.lag === undefined ? length : Number(g.lag) + Number(g.pending ?? 0);
  }
  return 0;
}

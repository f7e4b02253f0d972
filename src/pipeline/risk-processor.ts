/**
 * Processes one micro-batch: validate every event, then apply them in order with atomic scripts (one call per run
 * of up to CHARGES_PER_CALL consecutive charges, one per other event), all pipelined in a single round trip on one
 * connection. Rejections go to the dead-letter store in the same round trip.
 *
 * Safe to run again on the same batch (a redelivered job): decisions are deduplicated by eventId inside the
 * script, dead letters by their source.
 */
import type { ChainableCommander, Redis } from 'ioredis';
import { SlotPipeline, type RedisClient } from '../redis/client.ts';
import type { Keys } from '../redis/keys.ts';
import type { Counter } from 'prom-client';
import type { DeadLetters } from '../deadletter/dead-letters.ts';
import { claimDigest, conflictReason, type EventClaims } from '../decisions/claims.ts';
import { parseDecision } from '../decisions/decision.ts';
import { findCardNumber, maskCardNumbers, tokenizeCharge, type CardHasher } from '../events/card.ts';
import { clockProblem, eventTimeProblem, type EventTimeLimits } from '../events/event-time.ts';
import { eventSchemas, parseQueuedEvent, type ChargeEvent, type EventType, type QueuedCharge, type RiskEvent } from '../events/schema.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { RejectReason } from './reject-reasons.ts';
import { defineScript } from '../redis/scripts.ts';
import { CHARGES_PER_CALL, ChargeRules, evaluateChargesScript, parseChargeReply } from '../rules/charge-rules.ts';
import type { BatchJobData, EventResult } from './batch-job.ts';

/** What applying one event came to. */
export type HandlerOutcome =
  | {
      result: EventResult;
      /** false for an eventId seen before. */
      isNew: boolean;
      settled?: { kind: 'held' | 't_plus_1'; amount: number };
      /**
       * Set when the script refused the event given the state (e.g. a second account opening; result outcome
       * "rejected"): it is dead-lettered with its error under this reason.
       */
      rejectReason?: RejectReason;
    }
  /** The script failed on this event (not transiently): it is dead-lettered as "evaluation failed". */
  | { failed: string };

/** How one event type is applied, event by event: queue its atomic script call, then read the reply. */
export interface EventHandler<E extends QueuedEvent = QueuedEvent> {
  enqueue(pipeline: ChainableCommander, event: E, occurredAtMs: number, nowMs: number): void;
  interpret(reply: unknown, event: E): Exclude<HandlerOutcome, { failed: string }>;
}

export interface HandlerItem<E extends QueuedEvent = QueuedEvent> {
  event: E;
  occurredAtMs: number;
  /** The producer's clock when it accepted the event (epoch ms): the event is decided as of then. */
  clockMs: number;
}

/** [error, reply] of one pipelined command, as ioredis gives it. */
export type PipelineReply = [Error | null, unknown];

/**
 * How one event type is applied a run at a time: consecutive events of the type in a batch share script calls
 * (charges: one call per up to CHARGES_PER_CALL charges).
 */
export interface RunHandler<E extends QueuedEvent = QueuedEvent> {
  /** Queues the script calls for `items`, decided in that order; returns how many commands it queued. */
  enqueueRun(pipeline: ChainableCommander, items: HandlerItem<E>[], nowMs: number): number;
  /** One outcome per item, in order, from the replies of those commands. */
  interpretRun(replies: PipelineReply[], items: HandlerItem<E>[]): HandlerOutcome[];
}

/** Events as workers receive them: charges may arrive tokenized by the producer. */
export type QueuedEvent = RiskEvent | QueuedCharge;

export type HandlerTable = { [T in EventType]: EventHandler<Extract<QueuedEvent, { type: T }>> | RunHandler<Extract<QueuedEvent, { type: T }>> };

export class HandlerTableError extends Error {
  override name = 'HandlerTableError';
}

/** A type without a handler (or a handler for no type) stops start-up, rather than failing on the first event. */
export function checkHandlers(table: Record<string, unknown>): void {
  const known = Object.keys(eventSchemas).sort();
  const handled = Object.keys(table).sort();
  const missing = known.filter((t) => !handled.includes(t));
  const extra = handled.filter((t) => !known.includes(t));
  if (missing.length || extra.length) {
    throw new HandlerTableError(`event handlers do not match event types: missing [${missing}], unknown [${extra}]`);
  }
}

/** An event-by-event handler as a run handler: one command per event. */
export function perEvent<E extends QueuedEvent>(handler: EventHandler<E> | RunHandler<E>): RunHandler<E> {
  if ('enqueueRun' in handler) return handler;
  return {
    enqueueRun(pipeline, items, nowMs) {
      for (const { event, occurredAtMs } of items) handler.enqueue(pipeline, event, occurredAtMs, nowMs);
      return items.length;
    },
    interpretRun: (replies, items) => items.map(({ event }, i) => {
      const [err, reply] = replies[i]!;
      return err ? { failed: err.message } : handler.interpret(reply, event);
    }),
  };
}

/** Charges, CHARGES_PER_CALL to a script call: one atomic evaluation each, in order. */
export function chargeHandler(redis: RedisClient, rules: ChargeRules): RunHandler<ChargeEvent | QueuedCharge> {
  const evaluate = defineScript(redis, evaluateChargesScript);
  return {
    enqueueRun(pipeline, items, nowMs) {
      let calls = 0;
      for (let i = 0; i < items.length; i += CHARGES_PER_CALL) {
        const { keys, args } = rules.scriptCall(items.slice(i, i + CHARGES_PER_CALL), nowMs);
        evaluate(pipeline, keys, args);
        calls++;
      }
      return calls;
    },
    interpretRun(replies, items) {
      return items.map(({ event, occurredAtMs }, i) => {
        const [err, reply] = replies[Math.floor(i / CHARGES_PER_CALL)]!;
        if (err) return { failed: err.message };
        const charge = parseChargeReply((reply as string[])[i % CHARGES_PER_CALL] ?? 'Emissing reply', rules.recordGenerationAt(occurredAtMs));
        if (charge.kind === 'error') return { failed: charge.message };
        // A new decision comes back as a short summary; a duplicate as its charge record (its reasons are in the
        // decision, in Redis until archived, then in the archive).
        const d = charge.kind === 'new' ? { ...charge.summary, amount: event.amount } : charge.record;
        return {
          result: { eventId: event.eventId, outcome: d.outcome, rules: d.rules, settleAt: d.settleAt },
          isNew: charge.kind === 'new',
          settled: d.outcome === 'decline' ? undefined : { kind: d.outcome === 'review' ? 'held' : 't_plus_1', amount: d.amount },
        };
      });
    },
  };
}

export interface ProcessorDeps {
  redis: RedisClient;
  /** A batch's events are of one shard: its scripts go to that shard's slot, its dead letters to theirs. */
  keys: Keys;
  handlers: HandlerTable;
  deadLetters: DeadLetters;
  /** Event time is checked again against each event's producer clock. */
  timeLimits: EventTimeLimits;
  /** Claims the eventIds of batches no producer claimed. */
  claims: EventClaims;
  cards: CardHasher;
  metrics: Metrics;
  logger: Logger;
  now?: () => number;
  /** Runs before each batch, never inside one: the workers switch to a newly published rules version here. */
  beforeBatch?: () => Promise<void>;
}

/** Errors that go away by themselves: retry the batch (it is idempotent) rather than reject the event. */
export function isTransientRedisError(e: unknown): boolean {
  const msg = e instanceof Error ? e.message : String(e);
  // "Command aborted due to connection close": ioredis gave up on a command in flight when Redis went away.
  return /^(OOM|LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|READONLY|MASTERDOWN|NOREPLICAS)\b|Connection is closed|Command aborted|ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|Stream isn't writeable|max retries|Command timed out/i.test(
    msg,
  );
}

export class TransientBatchError extends Error {
  override name = 'TransientBatchError';
}

export class RiskProcessor {
  private readonly now: () => number;
  private readonly handlers: Record<string, RunHandler>;

  constructor(private readonly deps: ProcessorDeps) {
    checkHandlers(deps.handlers);
    this.now = deps.now ?? Date.now;
    this.handlers = Object.fromEntries(Object.entries(deps.handlers).map(([type, h]) => [type, perEvent(h as EventHandler)]));
  }

  /** Validates one queued event and its time against its producer clock, and that clock against this worker's. */
  private check(raw: unknown, clockMs: number, nowMs: number): Checked {
    const parsed = parseQueuedEvent(raw);
    if (!parsed.ok) return { ok: false, reason: parsed.reason, label: parsed.label };
    // A stamp from the future: a batch queued by hand, or a producer whose clock runs ahead of this worker's (send
    // its events again once the clocks agree). Labelled apart from bad input.
    const ahead = clockProblem(clockMs, nowMs, this.deps.timeLimits);
    if (ahead) return { ok: false, reason: ahead, label: 'clock_ahead' };
    const problem = eventTimeProblem(parsed.event, parsed.occurredAtMs, clockMs, this.deps.timeLimits);
    if (problem) return { ok: false, reason: problem, label: 'event_time' };
    return { ok: true, item: { event: parsed.event, occurredAtMs: parsed.occurredAtMs, clockMs } };
  }

  /**
   * Claims the eventIds of a batch no producer claimed (queued by other means), in batch order; an eventId held by
   * other content rejects its event. A redelivery finds its own claims: repeats.
   */
  private async claim(checked: Checked[]): Promise<void> {
    const { claims, cards } = this.deps;
    const claiming: { index: number; eventId: string; content: string; clock: number }[] = [];
    checked.forEach((c, index) => {
      if (!c.ok) return;
      const e = c.item.event;
      const content = claimDigest(e.type === 'charge' && 'cardId' in e ? tokenizeCharge(e, cards) : (e as Exclude<QueuedEvent, ChargeEvent>), c.item.occurredAtMs);
      claiming.push({ index, eventId: e.eventId, content, clock: c.item.clockMs });
    });
    if (claiming.length === 0) return;
    let answers: unknown[];
    try {
      answers = await claims.claimInOrder(
        claiming.map((c) => c.eventId),
        claiming.map((c) => c.content),
        claiming.map((c) => c.clock),
      );
    } catch (e) {
      // Retried with the whole batch (claiming again is a repeat); anything else is a bug that fails the job.
      if (isTransientRedisError(e) || (e as Error).message === 'missing replies') {
        throw new TransientBatchError(`could not claim the batch's eventIds: ${(e as Error).message}`);
      }
      throw e;
    }
    claiming.forEach(({ index, content }, k) => {
      const claim = claims.interpret(answers[k], content);
      if (claim.kind === 'conflict') checked[index] = { ok: false, reason: conflictReason(claim.fields), label: 'id_conflict' };
    });
  }

  /**
   * @param source prefix identifying this batch for dead-letter dedupe, e.g. "queue:risk-3/1234".
   * @returns per-event results in input order.
   */
  async process(data: unknown, source: string): Promise<EventResult[]> {
    const { redis, deadLetters, metrics } = this.deps;
    const started = performance.now();
    await this.deps.beforeBatch?.();
    const batch = asBatch(data);
    if (!batch.ok) {
      await deadLetters.record(redis, { source, reason: batch.reason, raw: data });
      metrics.eventsRejected.inc({ reason: 'bad_payload' });
      metrics.eventsConsumed.inc({ type: 'unknown', result: 'rejected' });
      return [];
    }
    const { events, enqueuedAt, clocks, claimed } = batch.data;
    const now = this.now();
    const checked = events.map((raw, index) => this.check(raw, clocks[index]!, now));
    if (!claimed) await this.claim(checked);

    const pipeline = new SlotPipeline(redis);
    const { keys } = this.deps;
    type Slot =
      | { kind: 'event'; event: QueuedEvent; outcome?: HandlerOutcome }
      | { kind: 'rejected'; result: EventResult; reason: RejectReason; command: number };
    const slots: Slot[] = [];
    // Consecutive events of one type form a run, applied in order by its handler's script calls.
    type Run = { handler: RunHandler; type: string; shard: number; items: HandlerItem[]; slots: number[]; first: number; count: number };
    const runs: Run[] = [];
    let run: Run | undefined;
    let commands = 0;
    const endRun = () => {
      if (!run) return;
      run.first = commands;
      const r = run;
      run.count = pipeline.add(keys.decisionStream(r.shard), (p) => r.handler.enqueueRun(p, r.items, now));
      commands += run.count;
      runs.push(run);
      run = undefined;
    };

    checked.forEach((c, index) => {
      if (!c.ok) {
        endRun();
        const raw = events[index];
        const eventId = safeEventId(raw);
        pipeline.add(keys.deadLetter, (p) => deadLetters.record(p, { source: `${source}#${index}`, reason: c.reason, raw }, now));
        slots.push({ kind: 'rejected', result: { eventId, outcome: 'rejected', error: c.reason }, reason: c.label, command: commands++ });
        return;
      }
      const { item } = c;
      // A run is one type and one shard: its script calls touch one slot. A queue's batch is one shard's; a batch
      // put together otherwise (tests, tools) is split where the shard changes, each user's events still in order.
      const shard = keys.shardOf(item.event.userId);
      if (run?.type !== item.event.type || run.shard !== shard) {
        endRun();
        run = { handler: this.handlers[item.event.type]!, type: item.event.type, shard, items: [], slots: [], first: 0, count: 0 };
      }
      run!.items.push(item);
      run!.slots.push(slots.length);
      slots.push({ kind: 'event', event: item.event });
    });
    endRun();

    const replies = await pipeline.exec();
    const decidedAt = this.now();
    const transient = replies.find(([err]) => err && isTransientRedisError(err));
    if (transient || replies.length !== commands) {
      // Everything queued above is idempotent: the caller runs the whole batch again, and metrics wait for that.
      throw new TransientBatchError(`batch failed transiently: ${transient?.[0]?.message ?? 'missing replies'}`);
    }
    for (const r of runs) {
      const outcomes = r.handler.interpretRun(replies.slice(r.first, r.first + r.count) as PipelineReply[], r.items);
      r.slots.forEach((slotIndex, k) => ((slots[slotIndex] as Extract<Slot, { kind: 'event' }>).outcome = outcomes[k]));
    }

    const results: EventResult[] = [];
    const lateRejections: Promise<unknown>[] = [];
    // Counters are added up over the batch and incremented once per label set: prom-client hashes labels per call.
    const tally = new CounterTally();
    slots.forEach((slot, i) => {
      if (slot.kind === 'rejected') {
        tally.add(metrics.eventsConsumed, { type: eventTypeLabel(events[i]), result: 'rejected' });
        if (replies[slot.command]![1] === 1) metrics.eventsRejected.inc({ reason: slot.reason });
        results.push(slot.result);
        return;
      }
      const { event, outcome } = slot;
      if (!outcome || 'failed' in outcome) {
        // A deterministic failure of the script for this event: keep the event where an operator sees it.
        const reason = `evaluation failed: ${outcome?.failed ?? 'no outcome'}`;
        this.deps.logger.error({ eventId: event.eventId, err: reason }, 'event evaluation failed');
        lateRejections.push(deadLetters.record(redis, { source: `${source}#${i}`, reason, raw: event }) as Promise<unknown>);
        metrics.eventsRejected.inc({ reason: 'evaluation_error' });
        tally.add(metrics.eventsConsumed, { type: event.type, result: 'rejected' });
        results.push({ eventId: event.eventId, outcome: 'rejected', error: reason });
        return;
      }
      const { result, isNew, settled, rejectReason: stateReason } = outcome;
      if (result.outcome === 'rejected') {
        // Refused by the state it met (nothing was written): dead-lettered once per source, like a bad line.
        tally.add(metrics.eventsConsumed, { type: event.type, result: 'rejected' });
        lateRejections.push(
          Promise.resolve(deadLetters.record(redis, { source: `${source}#${i}`, reason: result.error ?? 'rejected', raw: event }, now)).then((fresh) => {
            if (fresh === 1) metrics.eventsRejected.inc({ reason: stateReason ?? 'conflict' });
          }),
        );
        results.push(result);
        return;
      }
      tally.add(metrics.eventsConsumed, { type: event.type, result: 'accepted' });
      if (!isNew) {
        tally.add(metrics.duplicates, {});
      } else {
        if (result.outcome === 'approve' || result.outcome === 'review' || result.outcome === 'decline') {
          tally.add(metrics.decisions, { outcome: result.outcome });
          metrics.decisionLatency.observe(Math.max(0, decidedAt - enqueuedAt) / 1000);
        }
        for (const rule of result.rules ?? []) tally.add(metrics.ruleHits, { rule });
        if (settled) {
          tally.add(metrics.settlementsScheduled, { kind: settled.kind });
          tally.add(metrics.settlementsScheduledAmount, { kind: settled.kind }, settled.amount);
        }
      }
      results.push(result);
    });
    tally.flush();

    await Promise.all(lateRejections);
    metrics.batchSize.observe(events.length);
    metrics.batchDuration.observe((performance.now() - started) / 1000);
    return results;
  }
}

type Checked = { ok: true; item: HandlerItem } | { ok: false; reason: string; label: RejectReason };

/** Counter increments of one batch, added up by counter and label values. */
class CounterTally {
  private readonly byCounter = new Map<Counter<string>, Map<string, { labels: Record<string, string>; n: number }>>();

  add(counter: Counter<string>, labels: Record<string, string>, n = 1): void {
    let entries = this.byCounter.get(counter);
    if (!entries) this.byCounter.set(counter, (entries = new Map()));
    // Every counter here has at most two labels, and their values are short and bounded.
    let key = '';
    for (const k in labels) key += `${labels[k]}\u0000`;
    const entry = entries.get(key);
    if (entry) entry.n += n;
    else entries.set(key, { labels, n });
  }

  flush(): void {
    for (const [counter, entries] of this.byCounter) for (const { labels, n } of entries.values()) counter.inc(labels, n);
  }
}

interface Batch {
  events: unknown[];
  enqueuedAt: number;
  /** One producer clock per event. */
  clocks: number[];
  claimed: boolean;
  reply: boolean;
}

/** The batch with one producer clock per event (whole epoch ms). */
function asBatch(data: unknown): { ok: true; data: Batch } | { ok: false; reason: string } {
  if (typeof data !== 'object' || data === null) return { ok: false, reason: 'job payload is not an object' };
  const d = data as Partial<BatchJobData>;
  if (!Array.isArray(d.events)) return { ok: false, reason: 'job payload has no "events" array' };
  const enqueuedAt = typeof d.enqueuedAt === 'number' && Number.isFinite(d.enqueuedAt) ? d.enqueuedAt : Date.now();
  const events = d.events;
  let clocks: number[];
  const isClock = (c: unknown): c is number => Number.isSafeInteger(c) && (c as number) >= 0;
  if (d.v === 2) {
    if (isClock(d.clock)) {
      const clock = d.clock;
      clocks = events.map(() => clock);
    } else if (Array.isArray(d.clocks) && d.clocks.length === events.length && d.clocks.every(isClock)) {
      clocks = d.clocks;
    } else {
      return { ok: false, reason: 'job payload v2 must carry its producer clock: "clock", or one "clocks" entry per event (whole epoch ms)' };
    }
  } else {
    // Queued without our producer: the batch's own stamp is every event's clock.
    const clock = Math.floor(enqueuedAt);
    clocks = events.map(() => clock);
  }
  return { ok: true, data: { events, enqueuedAt, clocks, claimed: d.v === 2 && d.claimed === true, reply: d.reply === true } };
}

/** The eventId of a rejected element, for its result: cut to the contract's length, a card number in it masked. */
export function safeEventId(raw: unknown): string | null {
  const id = (raw as { eventId?: unknown } | null)?.eventId;
  if (typeof id !== 'string') return null;
  const cut = id.slice(0, 128);
  return findCardNumber(cut) ? maskCardNumbers(cut) : cut;
}

function eventTypeLabel(raw: unknown): string {
  const type = (raw as { type?: unknown } | null)?.type;
  return typeof type === 'string' && Object.hasOwn(eventSchemas, type) ? type : 'unknown';
}


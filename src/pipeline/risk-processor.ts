/**
 * Processes one micro-batch: validate every event, then one atomic script call per event, all pipelined in a
 * single round trip on one connection. Rejections go to the dead-letter store in the same round trip.
 *
 * Safe to run again on the same batch (a redelivered job): decisions are deduplicated by eventId inside the
 * script, dead letters by their source.
 */
import type { ChainableCommander, Redis } from 'ioredis';
import type { DeadLetters } from '../deadletter/dead-letters.ts';
import { parseDecision } from '../decisions/decision.ts';
import { eventSchemas, parseQueuedEvent, type ChargeEvent, type EventType, type QueuedCharge, type RiskEvent } from '../events/schema.ts';
import type { Logger } from '../logger.ts';
import type { Metrics, RejectReason } from '../metrics.ts';
import { defineScript } from '../redis/scripts.ts';
import { ChargeRules, evaluateChargeScript, parseDecisionSummary } from '../rules/charge-rules.ts';
import type { BatchJobData, EventResult } from './batch-job.ts';

/** How one event type is applied: queue its atomic script call, then read the reply. */
export interface EventHandler<E extends QueuedEvent = QueuedEvent> {
  enqueue(pipeline: ChainableCommander, event: E, occurredAtMs: number, nowMs: number): void;
  /**
   * Turns the script reply into a result; `isNew` is false for an eventId seen before. A result with outcome
   * "rejected" (the script refused the event given the state, e.g. a second account opening) is dead-lettered
   * with its error under `rejectReason`.
   */
  interpret(
    reply: unknown,
    event: E,
  ): { result: EventResult; isNew: boolean; settled?: { kind: 'held' | 't_plus_1'; amount: number }; rejectReason?: RejectReason };
}

/** Events as workers receive them: charges may arrive tokenized by the producer. */
export type QueuedEvent = RiskEvent | QueuedCharge;

export type HandlerTable = { [T in EventType]: EventHandler<Extract<QueuedEvent, { type: T }>> };

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

export function chargeHandler(redis: Redis, rules: ChargeRules): EventHandler<ChargeEvent | QueuedCharge> {
  const evaluate = defineScript(redis, evaluateChargeScript);
  return {
    enqueue(pipeline, event, occurredAtMs, nowMs) {
      const { keys, args } = rules.scriptCall(event, occurredAtMs, nowMs);
      evaluate(pipeline, keys, args);
    },
    interpret(reply, event) {
      const [fresh, text] = reply as [number, string];
      // A new decision comes back as a short summary; a duplicate as the stored record (rare, worth the parse).
      const d = fresh === 1 ? { ...parseDecisionSummary(text), amount: event.amount } : parseDecision(text);
      return {
        result: { eventId: event.eventId, outcome: d.outcome, rules: d.rules, settleAt: d.settleAt },
        isNew: fresh === 1,
        settled: d.outcome === 'decline' ? undefined : { kind: d.outcome === 'review' ? 'held' : 't_plus_1', amount: d.amount },
      };
    },
  };
}

export interface ProcessorDeps {
  redis: Redis;
  handlers: HandlerTable;
  deadLetters: DeadLetters;
  metrics: Metrics;
  logger: Logger;
  now?: () => number;
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

  constructor(private readonly deps: ProcessorDeps) {
    checkHandlers(deps.handlers);
    this.now = deps.now ?? Date.now;
  }

  /**
   * @param source prefix identifying this batch for dead-letter dedupe, e.g. "queue:risk-3/1234".
   * @returns per-event results in input order.
   */
  async process(data: unknown, source: string): Promise<EventResult[]> {
    const { redis, deadLetters, metrics, handlers } = this.deps;
    const started = performance.now();
    const batch = asBatch(data);
    if (!batch.ok) {
      await deadLetters.record(redis, { source, reason: batch.reason, raw: data });
      metrics.eventsRejected.inc({ reason: 'bad_payload' });
      metrics.eventsConsumed.inc({ type: 'unknown', result: 'rejected' });
      return [];
    }
    const { events, enqueuedAt } = batch.data;
    const now = this.now();
    const pipeline = redis.pipeline();
    type Slot =
      | { kind: 'event'; event: QueuedEvent }
      | { kind: 'rejected'; result: EventResult; reason: RejectReason };
    const slots: Slot[] = [];

    events.forEach((raw, index) => {
      const parsed = parseQueuedEvent(raw);
      if (!parsed.ok) {
        const eventId = typeof (raw as { eventId?: unknown })?.eventId === 'string' ? (raw as { eventId: string }).eventId : null;
        deadLetters.record(pipeline, { source: `${source}#${index}`, reason: parsed.reason, raw }, now);
        slots.push({ kind: 'rejected', result: { eventId, outcome: 'rejected', error: parsed.reason }, reason: rejectReason(raw, parsed.reason) });
        return;
      }
      const handler = handlers[parsed.event.type] as EventHandler;
      handler.enqueue(pipeline, parsed.event, parsed.occurredAtMs, now);
      slots.push({ kind: 'event', event: parsed.event });
    });

    const replies = (await pipeline.exec()) ?? [];
    const decidedAt = this.now();
    const transient = replies.find(([err]) => err && isTransientRedisError(err));
    if (transient || replies.length !== slots.length) {
      // Everything queued above is idempotent: the caller runs the whole batch again, and metrics wait for that.
      throw new TransientBatchError(`batch failed transiently: ${transient?.[0]?.message ?? 'missing replies'}`);
    }

    const results: EventResult[] = [];
    const lateRejections: Promise<unknown>[] = [];
    slots.forEach((slot, i) => {
      const [err, reply] = replies[i]!;
      if (slot.kind === 'rejected') {
        metrics.eventsConsumed.inc({ type: eventTypeLabel(events[i]), result: 'rejected' });
        if (reply === 1) metrics.eventsRejected.inc({ reason: slot.reason });
        results.push(slot.result);
        return;
      }
      const event = slot.event;
      if (err) {
        // A deterministic failure of the script for this event: keep the event where an operator sees it.
        const reason = `evaluation failed: ${err.message}`;
        this.deps.logger.error({ eventId: event.eventId, err: err.message }, 'event evaluation failed');
        lateRejections.push(deadLetters.record(redis, { source: `${source}#${i}`, reason, raw: event }) as Promise<unknown>);
        metrics.eventsRejected.inc({ reason: 'evaluation_error' });
        metrics.eventsConsumed.inc({ type: event.type, result: 'rejected' });
        results.push({ eventId: event.eventId, outcome: 'rejected', error: reason });
        return;
      }
      const handler = handlers[event.type] as EventHandler;
      const { result, isNew, settled, rejectReason: stateReason } = handler.interpret(reply, event);
      if (result.outcome === 'rejected') {
        // Refused by the state it met (nothing was written): dead-lettered once per source, like a bad line.
        metrics.eventsConsumed.inc({ type: event.type, result: 'rejected' });
        lateRejections.push(
          Promise.resolve(deadLetters.record(redis, { source: `${source}#${i}`, reason: result.error ?? 'rejected', raw: event }, now)).then((fresh) => {
            if (fresh === 1) metrics.eventsRejected.inc({ reason: stateReason ?? 'conflict' });
          }),
        );
        results.push(result);
        return;
      }
      metrics.eventsConsumed.inc({ type: event.type, result: 'accepted' });
      if (!isNew) {
        metrics.duplicates.inc();
      } else {
        if (result.outcome === 'approve' || result.outcome === 'review' || result.outcome === 'decline') {
          metrics.decisions.inc({ outcome: result.outcome });
          metrics.decisionLatency.observe(Math.max(0, decidedAt - enqueuedAt) / 1000);
        }
        for (const rule of result.rules ?? []) metrics.ruleHits.inc({ rule });
        if (settled) {
          metrics.settlementsScheduled.inc({ kind: settled.kind });
          metrics.settlementsScheduledAmount.inc({ kind: settled.kind }, settled.amount);
        }
      }
      results.push(result);
    });

    await Promise.all(lateRejections);
    metrics.batchSize.observe(events.length);
    metrics.batchDuration.observe((performance.now() - started) / 1000);
    return results;
  }
}

function asBatch(data: unknown): { ok: true; data: BatchJobData } | { ok: false; reason: string } {
  if (typeof data !== 'object' || data === null) return { ok: false, reason: 'job payload is not an object' };
  const d = data as Partial<BatchJobData>;
  if (!Array.isArray(d.events)) return { ok: false, reason: 'job payload has no "events" array' };
  const enqueuedAt = typeof d.enqueuedAt === 'number' && Number.isFinite(d.enqueuedAt) ? d.enqueuedAt : Date.now();
  return { ok: true, data: { v: 1, events: d.events, enqueuedAt, reply: d.reply === true } };
}

function eventTypeLabel(raw: unknown): string {
  const type = (raw as { type?: unknown } | null)?.type;
  return typeof type === 'string' && Object.hasOwn(eventSchemas, type) ? type : 'unknown';
}

/** Maps a rejection to its bounded metric label. */
export function rejectReason(raw: unknown, reason: string): RejectReason {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'not_an_object';
  if (reason.startsWith('unknown event type') || reason === 'type is missing') return 'unknown_type';
  return 'invalid_field';
}

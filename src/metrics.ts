/**
 * Every Prometheus metric of the service, in one registry per process. Prefix `riskmon_`, base units, and only
 * bounded labels (type, result, reason, outcome, rule, queue, state): never a user, card or event id.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Bounded set of rejection reasons used as a label; the full text goes to the dead-letter store. */
export type RejectReason =
  | 'invalid_json'
  | 'not_an_object'
  | 'unknown_type'
  | 'invalid_field'
  | 'too_long'
  | 'bad_payload'
  | 'evaluation_error'
  /** Valid, but refused by the state it met (a second account opening). */
  | 'conflict';

export class Metrics {
  readonly registry = new Registry();

  readonly eventsConsumed = new Counter({
    name: 'riskmon_events_consumed_total',
    help: 'Events taken off the queues, by event type and result (accepted or rejected).',
    labelNames: ['type', 'result'] as const,
    registers: [this.registry],
  });

  readonly eventsRejected = new Counter({
    name: 'riskmon_events_rejected_total',
    help: 'Events rejected into the dead-letter store, by reason category.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly decisions = new Counter({
    name: 'riskmon_decisions_total',
    help: 'New decisions made, by outcome (redelivered duplicates are not counted again).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly duplicates = new Counter({
    name: 'riskmon_duplicate_events_total',
    help: 'Events whose eventId was already decided; the stored decision was returned.',
    registers: [this.registry],
  });

  readonly ruleHits = new Counter({
    name: 'riskmon_rule_hits_total',
    help: 'Rules that fired, by rule (several may fire for one event).',
    labelNames: ['rule'] as const,
    registers: [this.registry],
  });

  readonly decisionLatency = new Histogram({
    name: 'riskmon_decision_latency_seconds',
    help: 'Time from enqueue (producer) to decision stored.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly batchDuration = new Histogram({
    name: 'riskmon_batch_duration_seconds',
    help: 'Time to process one queue job (a micro-batch of events).',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers: [this.registry],
  });

  readonly batchSize = new Histogram({
    name: 'riskmon_batch_events',
    help: 'Events carried by one queue job.',
    buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500],
    registers: [this.registry],
  });

  readonly settlementsScheduled = new Counter({
    name: 'riskmon_settlements_scheduled_total',
    help: 'Transactions scheduled for settlement, by kind (t_plus_1 for approved, held for review).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly settlementsScheduledAmount = new Counter({
    name: 'riskmon_settlements_scheduled_fen_total',
    help: 'Amount scheduled for settlement in fen, by kind.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly settlementsSettled = new Counter({
    name: 'riskmon_settlements_settled_total',
    help: 'Transactions recorded as settled in the Fenfu ledger.',
    registers: [this.registry],
  });

  readonly settlementsSettledAmount = new Counter({
    name: 'riskmon_settlements_settled_fen_total',
    help: 'Amount recorded as settled in the Fenfu ledger, fen.',
    registers: [this.registry],
  });

  readonly processingErrors = new Counter({
    name: 'riskmon_processing_retries_total',
    help: 'Batches retried after a transient Redis error, by component.',
    labelNames: ['component'] as const,
    registers: [this.registry],
  });

  readonly calibrationRuns = new Counter({
    name: 'riskmon_calibration_runs_total',
    help: 'Quota calibration runs, by result (completed, refused, failed).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly calibrationAccounts = new Counter({
    name: 'riskmon_calibration_accounts_total',
    help: 'Accounts calibrated, by change of their quota (up, down, unchanged); skipped repeats are not counted.',
    labelNames: ['change'] as const,
    registers: [this.registry],
  });

  readonly calibrationWarnings = new Counter({
    name: 'riskmon_calibration_warnings_total',
    help: 'Warnings recorded by calibrations, by warning.',
    labelNames: ['warning'] as const,
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'riskmon_' });
  }
}

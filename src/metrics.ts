/**
 * Every Prometheus metric of the service, in one registry per process. Prefix `riskmon_`, base units, and only
 * bounded labels (type, result, reason, outcome, rule, queue, state): never a user, card or event id.
 */
import type { Queue } from 'bullmq';
import { masterNodes, SlotPipeline, type RedisClient } from './redis/client.ts';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { RULE_NAMES } from './rules/registry.ts';
import { eventSchemas } from './events/schema.ts';
import { REJECT_REASONS } from './pipeline/reject-reasons.ts';
import { PRODUCER_REJECT_REASONS } from './pipeline/producer.ts';
import type { Keys } from './redis/keys.ts';
import { WATCHED_COMPONENTS } from './redis/worker-watchdog.ts';
import { CALIBRATION_RUN_RESULTS, QUOTA_CHANGES, WARNING_NAMES } from './quota/calibration.ts';
import { ARCHIVE_SOURCES, ARCHIVED_TABLES } from './archive/archiver.ts';
import type { CaseCounts } from './cases/case-queue.ts';
import { CASE_OUTCOMES, type CaseOutcome } from './cases/case.ts';
import type { SettlementStats } from './settlement/ledger.ts';

/** Queue states reported by `riskmon_queue_jobs` (BullMQ's names). */
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed'] as const;

/** What the scrape-time gauges read: the namespace's queues and Redis. Set once by the service (`Metrics.observe`). */
export interface ScrapeSources {
  /** Every queue of the namespace: the risk shard queues and the settlement queue. */
  queues: Queue[];
  /** A command connection (never a blocking one). */
  redis: RedisClient;
  keys: Keys;
  settlementStats: () => Promise<SettlementStats>;
  /** The review queue's counts (src/cases/case-queue.ts). */
  caseCounts: (nowMs: number) => Promise<CaseCounts>;
  /** `riskmon_build_info` labels. */
  build: { version: string; configVersion: string };
  now?: () => number;
  /** Longest a scrape waits for Redis before reporting what it has, ms. @defaultValue 2000 */
  timeoutMs?: number;
}

/** One scrape's reading of Redis, shared by every scrape-time gauge of that scrape. */
interface Snapshot {
  queues: { name: string; counts: Record<string, number>; oldestWaitingAgeSeconds: number }[];
  settlement: SettlementStats;
  overdueSeconds: number;
  deadLetters: number;
  producerRejections: Record<string, string>;
  /** Credit outstanding over every account, fen. */
  creditOwed: number;
  memory: { used: number; max: number };
  cases: CaseCounts;
}

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

  readonly settlementFees = new Counter({
    name: 'riskmon_settlement_fees_fen_total',
    help: 'Merchant fees on what was settled into the Fenfu ledger, fen, by fee tier, kind (charge: kept; reversal: given back with a refund) and fee (base, technical).',
    labelNames: ['tier', 'kind', 'fee'] as const,
    registers: [this.registry],
  });

  readonly settlementNet = new Counter({
    name: 'riskmon_settlement_net_fen_total',
    help: 'Net paid to merchants in the Fenfu ledger (gross less fees), fen, by fee tier and kind (charge: paid; reversal: taken back with a refund).',
    labelNames: ['tier', 'kind'] as const,
    registers: [this.registry],
  });

  readonly reconciliations = new Counter({
    name: 'riskmon_reconciliations_total',
    help: "Daily reconciliation attempts of the archive component: written (today's files, date closed) or failed (logged; tried again an hour later).",
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly watchdogRestarts = new Counter({
    name: 'riskmon_worker_watchdog_restarts_total',
    help: 'Workers replaced by the watchdog, by component: their queue had jobs due and none running for pipeline.watchdogSeconds.',
    labelNames: ['component'] as const,
    registers: [this.registry],
  });

  readonly schedulerRepairs = new Counter({
    name: 'riskmon_job_scheduler_repairs_total',
    help: 'Job schedulers installed again by the watchdog, by component: their queue had held no job for pipeline.watchdogSeconds (the next tick lost, as in a failover).',
    labelNames: ['component'] as const,
    registers: [this.registry],
  });

  readonly archiveRows = new Counter({
    name: 'riskmon_archive_rows_total',
    help: 'Rows the archiver wrote to PostgreSQL, by table (a row already there is not counted again).',
    labelNames: ['table'] as const,
    registers: [this.registry],
  });

  readonly archiveBacklog = new Gauge({
    name: 'riskmon_archive_backlog_entries',
    help: 'Stream entries not yet archived (not yet read, or read and not acknowledged), by source, as the archiver last read them.',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });

  readonly archiveLag = new Gauge({
    name: 'riskmon_archive_lag_seconds',
    help: 'Age of the oldest stream entry not yet archived, by source (0 when the archive is up to date), as the archiver last read it.',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });

  readonly archiveErrors = new Counter({
    name: 'riskmon_archive_errors_total',
    help: 'Archiver rounds that failed (Redis or the database): nothing of such a round was acknowledged; it is retried.',
    registers: [this.registry],
  });

  readonly archiveLost = new Counter({
    name: 'riskmon_archive_lost_entries_total',
    help: 'Stream entries the stream cap removed before the archive had them, by source: should stay 0 (the lag alert fires long before).',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });

  readonly archiveQuarantined = new Counter({
    name: 'riskmon_archive_quarantined_total',
    help: 'Stream entries PostgreSQL refused on their own, by source: kept in fenfu.archive_rejects with the error, so the archive goes on. Should stay 0.',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });

  readonly processingErrors = new Counter({
    name: 'riskmon_processing_retries_total',
    help: 'Batches retried after a transient Redis error, by component.',
    labelNames: ['component'] as const,
    registers: [this.registry],
  });

  readonly jobsStalled = new Counter({
    name: 'riskmon_jobs_stalled_total',
    help: 'Jobs whose worker stopped holding their lock; they are redelivered. By queue.',
    labelNames: ['queue'] as const,
    registers: [this.registry],
  });

  readonly jobsFailed = new Counter({
    name: 'riskmon_jobs_failed_total',
    help: 'Jobs that failed for good (left in the failed state for an operator). By queue.',
    labelNames: ['queue'] as const,
    registers: [this.registry],
  });

  /** Incremented by the quota calibration once per run. */
  readonly calibrationRuns = new Counter({
    name: 'riskmon_calibration_runs_total',
    help: 'Quota calibration runs, by result (completed, refused for an earlier date, failed).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  /** Incremented by the quota calibration once per account calibrated. */
  readonly calibrationAccounts = new Counter({
    name: 'riskmon_calibration_accounts_total',
    help: 'Accounts calibrated, by what happened to the quota (up, down or unchanged).',
    labelNames: ['change'] as const,
    registers: [this.registry],
  });

  /** Incremented by the quota calibration for every warning recorded. */
  readonly calibrationWarnings = new Counter({
    name: 'riskmon_calibration_warnings_total',
    help: 'Warnings recorded by quota calibration runs, by kind.',
    labelNames: ['warning'] as const,
    registers: [this.registry],
  });

  /** Set by the risk workers when they switch rules (src/rules/published.ts). */
  readonly rulesVersion = new Gauge({
    name: 'riskmon_rules_version',
    help: 'The published rules version this process decides with; 0 while it decides with its configuration file.',
    registers: [this.registry],
  });

  /** Incremented by a risk worker that finds a published version it cannot honour (it keeps its rules). */
  readonly rulesRefused = new Counter({
    name: 'riskmon_rules_refused_total',
    help: 'Published rules versions a worker refused to switch to (beyond what its kept state allows); it kept deciding with its current rules.',
    registers: [this.registry],
  });

  /** Incremented by the dashboard's basic auth (src/http/server.ts). */
  readonly loginFailures = new Counter({
    name: 'riskmon_http_login_failures_total',
    help: 'Queue dashboard logins refused with 401: wrong user or password.',
    registers: [this.registry],
  });

  /** Incremented by the dashboard's basic auth (src/http/server.ts). */
  readonly loginThrottled = new Counter({
    name: 'riskmon_http_login_throttled_total',
    help: 'Queue dashboard requests answered 429 without checking credentials: too many failed logins (one client, or all).',
    registers: [this.registry],
  });

  readonly scrapeErrors: Counter = (() => {
    const metrics = this;
    return new Counter({
      name: 'riskmon_scrape_errors_total',
      help: 'Scrapes whose Redis-backed gauges could not be read (Redis slow or away); those gauges are left out.',
      registers: [this.registry],
      // Counted by the snapshot of this very scrape, so wait for it.
      async collect() {
        await metrics.snapshot();
      },
    });
  })();

  // --- The review queue (src/cases/) ---

  readonly caseDecisions = new Counter({
    name: 'riskmon_case_decisions_total',
    help: 'Review cases closed, by outcome: released (by an analyst, or a supervisor approving one above four eyes), cancelled, auto_released (still open at its deadline).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly caseDecisionSeconds = new Histogram({
    name: 'riskmon_case_decision_seconds',
    help: 'Time from a case opening to its closing, by outcome, s.',
    labelNames: ['outcome'] as const,
    buckets: [60, 300, 900, 3_600, 4 * 3_600, 12 * 3_600, 24 * 3_600, 48 * 3_600, 72 * 3_600, 7 * 86_400],
    registers: [this.registry],
  });

  /** Counts a case closed `seconds` after it opened. */
  caseClosed(outcome: CaseOutcome, seconds: number): void {
    this.caseDecisions.inc({ outcome });
    this.caseDecisionSeconds.observe({ outcome }, seconds);
  }

  readonly casesWaiting = this.scrapeGauge({
    name: 'riskmon_cases',
    help: 'Review cases not closed, by status: open (nobody holds it), locked (an analyst holds it), pending_approval (a release waiting for a supervisor).',
    labelNames: ['status'],
    fill: (g, s) => {
      g.set({ status: 'open' }, s.cases.open);
      g.set({ status: 'locked' }, s.cases.locked);
      g.set({ status: 'pending_approval' }, s.cases.pendingApproval);
    },
  });

  readonly casesNearDeadline = this.scrapeGauge({
    name: 'riskmon_cases_near_deadline',
    help: 'Open review cases (held or not) whose deadline comes within cases.nearDeadlineMinutes: at the deadline they get the default (auto_release or extend), or wait for a person.',
    fill: (g, s) => g.set(s.cases.nearDeadline),
  });

  readonly caseOldestOpen = this.scrapeGauge({
    name: 'riskmon_case_oldest_open_seconds',
    help: 'Age of the oldest case not closed (of the first by deadline in the queue and approvals, and every held one), s; 0 when none.',
    fill: (g, s) => g.set(s.cases.oldestOpenSeconds),
  });

  private sources: ScrapeSources | undefined;
  private snapshotCache: { at: number; value: Promise<Snapshot | undefined> } | undefined;

  readonly buildInfo = new Gauge({
    name: 'riskmon_build_info',
    help: 'Always 1; labels carry the riskmon version and the configuration version decisions record.',
    labelNames: ['version', 'config_version'] as const,
    registers: [this.registry],
  });

  readonly queueJobs = this.scrapeGauge({
    name: 'riskmon_queue_jobs',
    help: 'Jobs in each queue of the namespace, by queue and state (one job carries a batch of events).',
    labelNames: ['queue', 'state'],
    fill: (g, s) => {
      for (const q of s.queues) for (const state of QUEUE_STATES) g.set({ queue: q.name, state }, q.counts[state] ?? 0);
    },
  });

  readonly queueOldestWaitingAge = this.scrapeGauge({
    name: 'riskmon_queue_oldest_waiting_age_seconds',
    help: 'Age of the oldest job waiting in each queue (0 when none waits): how far behind the workers are.',
    labelNames: ['queue'],
    fill: (g, s) => {
      for (const q of s.queues) g.set({ queue: q.name }, q.oldestWaitingAgeSeconds);
    },
  });

  readonly settlementsHeld = this.scrapeGauge({
    name: 'riskmon_settlements_held',
    help: 'Transactions sent to review whose settlement is held and not yet released.',
    fill: (g, s) => g.set(s.settlement.heldCount),
  });

  readonly settlementsHeldAmount = this.scrapeGauge({
    name: 'riskmon_settlements_held_fen',
    help: 'Amount of the held settlements, fen.',
    fill: (g, s) => g.set(s.settlement.heldAmount),
  });

  readonly settlementsPending = this.scrapeGauge({
    name: 'riskmon_settlements_pending',
    help: 'Approved transactions scheduled for settlement and not yet released.',
    fill: (g, s) => g.set(s.settlement.scheduledCount),
  });

  readonly settlementsPendingAmount = this.scrapeGauge({
    name: 'riskmon_settlements_pending_fen',
    help: 'Amount of the approved transactions awaiting settlement, fen.',
    fill: (g, s) => g.set(s.settlement.scheduledAmount),
  });

  readonly settlementOverdue = this.scrapeGauge({
    name: 'riskmon_settlement_overdue_seconds',
    help: 'How long the oldest due settlement has been waiting past its settlement time (0 when none is due).',
    fill: (g, s) => g.set(s.overdueSeconds),
  });

  readonly creditOutstanding = this.scrapeGauge({
    name: 'riskmon_credit_outstanding_fen',
    help: 'Credit outstanding over every account, fen: charges credit_limit counted, less repayments and refunds (a running total kept in Redis).',
    fill: (g, s) => g.set(s.creditOwed),
  });

  readonly deadLetterEntries = this.scrapeGauge({
    name: 'riskmon_dead_letter_entries',
    help: 'Entries in the dead-letter stream (capped by retention.deadLetterMaxLen).',
    fill: (g, s) => g.set(s.deadLetters),
  });

  readonly producerRejected = this.scrapeGauge({
    name: 'riskmon_producer_rejected_events',
    help: 'Inputs the producers refused before queueing, by reason: valid events (event time, eventId reused with other content) and lines that are no event (invalid_json, too_long, not_an_object, unknown_type, invalid_field); a running count kept in Redis by every producer process.',
    labelNames: ['reason'],
    fill: (g, s) => {
      for (const reason of PRODUCER_REJECT_REASONS) g.set({ reason }, Number(s.producerRejections[reason] ?? 0));
    },
  });

  readonly redisMemoryUsed = this.scrapeGauge({
    name: 'riskmon_redis_memory_used_bytes',
    help: 'Memory Redis uses (INFO memory used_memory).',
    fill: (g, s) => g.set(s.memory.used),
  });

  readonly redisMemoryMax = this.scrapeGauge({
    name: 'riskmon_redis_memory_max_bytes',
    help: 'Redis maxmemory limit (0 = no limit set).',
    fill: (g, s) => g.set(s.memory.max),
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'riskmon_' });
    // Known label values start at zero, so dashboards and ratios have series before the first event.
    for (const type of Object.keys(eventSchemas)) for (const result of ['accepted', 'rejected']) this.eventsConsumed.inc({ type, result }, 0);
    for (const reason of REJECT_REASONS) this.eventsRejected.inc({ reason }, 0);
    for (const outcome of ['approve', 'review', 'decline']) this.decisions.inc({ outcome }, 0);
    for (const rule of RULE_NAMES) this.ruleHits.inc({ rule }, 0);
    for (const result of CALIBRATION_RUN_RESULTS) this.calibrationRuns.inc({ result }, 0);
    for (const change of QUOTA_CHANGES) this.calibrationAccounts.inc({ change }, 0);
    for (const warning of WARNING_NAMES) this.calibrationWarnings.inc({ warning }, 0);
    this.loginFailures.inc(0);
    this.loginThrottled.inc(0);
    this.scrapeErrors.inc(0);
    for (const component of WATCHED_COMPONENTS) this.watchdogRestarts.inc({ component }, 0);
    for (const component of ['settlement', 'calibration'] as const) this.schedulerRepairs.inc({ component }, 0);
    for (const table of ARCHIVED_TABLES) this.archiveRows.inc({ table }, 0);
    for (const source of ARCHIVE_SOURCES) this.archiveLost.inc({ source }, 0);
    for (const source of ARCHIVE_SOURCES) this.archiveQuarantined.inc({ source }, 0);
    this.archiveErrors.inc(0);
    for (const outcome of CASE_OUTCOMES) this.caseDecisions.inc({ outcome }, 0);
    for (const outcome of CASE_OUTCOMES) this.caseDecisionSeconds.zero({ outcome });
  }

  /** Fills the scrape-time gauges from these sources from now on (the service calls it once). */
  observe(sources: ScrapeSources): void {
    this.sources = sources;
    this.snapshotCache = undefined;
    this.buildInfo.reset();
    this.buildInfo.set({ version: sources.build.version, config_version: sources.build.configVersion }, 1);
  }

  /** A gauge set from the current scrape's snapshot; left empty when there are no sources or Redis did not answer. */
  private scrapeGauge(spec: { name: string; help: string; labelNames?: string[]; fill: (g: Gauge, s: Snapshot) => void }): Gauge {
    const metrics = this;
    return new Gauge({
      name: spec.name,
      help: spec.help,
      labelNames: spec.labelNames ?? [],
      registers: [this.registry],
      async collect() {
        this.reset();
        const snapshot = await metrics.snapshot();
        if (snapshot) spec.fill(this, snapshot);
      },
    });
  }

  /** One reading of Redis per scrape (every gauge's collect runs at once and shares it). */
  private snapshot(): Promise<Snapshot | undefined> {
    const sources = this.sources;
    if (!sources) return Promise.resolve(undefined);
    const now = Date.now();
    if (this.snapshotCache && now - this.snapshotCache.at < 1_000) return this.snapshotCache.value;
    const timeoutMs = sources.timeoutMs ?? 2_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis did not answer within ${timeoutMs} ms`)), timeoutMs);
    });
    const value = Promise.race([readSnapshot(sources), timeout])
      .catch(() => {
        this.scrapeErrors.inc();
        this.snapshotCache = undefined;
        return undefined;
      })
      .finally(() => clearTimeout(timer));
    this.snapshotCache = { at: now, value };
    return value;
  }
}

async function readSnapshot(sources: ScrapeSources): Promise<Snapshot> {
  const { redis, keys } = sources;
  const now = (sources.now ?? Date.now)();
  const queues = await Promise.all(
    sources.queues.map(async (queue) => {
      const counts = await queue.getJobCounts(...QUEUE_STATES);
      // BullMQ pushes new jobs on the left of the wait list: the oldest is on the right.
      const oldestId = await redis.lindex(queue.keys.wait!, -1);
      const createdAt = oldestId ? Number(await redis.hget(queue.toKey(oldestId), 'timestamp')) : NaN;
      const oldestWaitingAgeSeconds = Number.isFinite(createdAt) ? Math.max(0, now - createdAt) / 1000 : 0;
      return { name: queue.name, counts, oldestWaitingAgeSeconds };
    }),
  );
  // Per shard: the earliest due settlement and the credit owed; INFO memory of every master.
  const shardReads = new SlotPipeline(redis);
  for (const shard of keys.shardIds) {
    shardReads.add(keys.settlementDue(shard), (p) => p.zrange(keys.settlementDue(shard), 0, 0, 'WITHSCORES').hget(keys.creditTotals(shard), 'owed'));
  }
  const [settlement, shardReplies, deadLetters, producerRejections, infos, cases] = await Promise.all([
    sources.settlementStats(),
    shardReads.exec(),
    redis.xlen(keys.deadLetter),
    redis.hgetall(keys.producerRejections),
    Promise.all(masterNodes(redis).map((node) => node.info('memory'))),
    sources.caseCounts(now),
  ]);
  let dueAt = NaN;
  let creditOwed = 0;
  for (let i = 0; i < shardReplies.length; i += 2) {
    const [dueErr, due] = shardReplies[i]!;
    const [owedErr, owed] = shardReplies[i + 1]!;
    if (dueErr || owedErr) throw dueErr ?? owedErr;
    const first = due as string[];
    if (first.length === 2 && !(Number(first[1]) >= dueAt)) dueAt = Number(first[1]);
    creditOwed += Number(owed ?? 0);
  }
  return {
    queues,
    settlement,
    overdueSeconds: Number.isFinite(dueAt) && dueAt < now ? (now - dueAt) / 1000 : 0,
    deadLetters,
    producerRejections,
    creditOwed,
    // Summed over the masters: a cluster's memory and its limit.
    memory: { used: sum(infos.map((i) => infoField(i, 'used_memory'))), max: sum(infos.map((i) => infoField(i, 'maxmemory'))) },
    cases,
  };
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function infoField(info: string, field: string): number {
  const m = new RegExp(`^${field}:(\\d+)`, 'm').exec(info);
  return m ? Number(m[1]) : 0;
}

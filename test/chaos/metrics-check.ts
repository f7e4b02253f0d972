/**
 * Item 11 (the part in this tree): the metrics carry no identifiers. Charges and garbage from many users go through
 * the processor; the metrics text must contain none of their event, user, merchant or card identifiers (nor a card
 * token or last four), and every label value of our metrics must come from a finite, known set, so the number of
 * series cannot grow with users. The dashboard's 401 and read-only checks come with the operate issue's HTTP server.
 */
import { createRedis } from '../../src/redis/connection.ts';
import type { RedisTarget } from '../../src/redis/target.ts';
import { RULE_NAMES } from '../../src/rules/registry.ts';
import { cardLast4, CardHasher } from '../../src/events/card.ts';
import { eventSchemas } from '../../src/events/schema.ts';
import { syntheticCharges } from '../../src/events/synthetic.ts';
import { Metrics } from '../../src/metrics.ts';
import { REJECT_REASONS } from '../../src/pipeline/reject-reasons.ts';
import { freshNamespace } from '../helpers/context.ts';
import { buildPipeline, chaosSettings, dropNamespace, TEST_CARD_SECRET } from './harness.ts';
import { testBatch } from '../helpers/batch.ts';
import { PRODUCER_REJECT_REASONS } from '../../src/pipeline/producer.ts';
import { WATCHED_COMPONENTS } from '../../src/redis/worker-watchdog.ts';
import { ARCHIVE_SOURCES, ARCHIVED_TABLES } from '../../src/archive/archiver.ts';
import { CASE_OUTCOMES } from '../../src/cases/case.ts';

/** Every label value a metric of ours may carry: finite sets, none of them an identifier. */
export const ALLOWED_LABELS: Record<string, readonly string[]> = {
  type: [...Object.keys(eventSchemas), 'unknown'],
  // Events consumed (accepted/rejected) and calibration runs (completed/refused/failed).
  result: ['accepted', 'rejected', 'completed', 'refused', 'failed'],
  reason: [...REJECT_REASONS, ...PRODUCER_REJECT_REASONS],
  change: ['up', 'down', 'unchanged'],
  warning: ['asset_redemption', 'repayment_without_debt'],
  // Decisions, and review cases closed.
  outcome: ['approve', 'review', 'decline', ...CASE_OUTCOMES],
  // Review cases not closed.
  status: ['open', 'locked', 'pending_approval'],
  rule: RULE_NAMES,
  kind: ['t_plus_1', 'held'],
  // Batches retried (risk, settlement) and workers replaced by the watchdog.
  component: [...new Set(['risk', 'settlement', ...WATCHED_COMPONENTS])],
  // The archive's tables and streams.
  table: ARCHIVED_TABLES,
  source: ARCHIVE_SOURCES,
};

export interface MetricsCheckFigures {
  users: number;
  events: number;
  identifiersChecked: number;
  series: number;
  leaked: string[];
  unboundedLabels: string[];
}

async function unbounded(metrics: Metrics): Promise<{ series: number; problems: string[] }> {
  const problems: string[] = [];
  let series = 0;
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    series += m.values.length;
    if (!m.name.startsWith('riskmon_')) problems.push(`${m.name}: not prefixed riskmon_`);
    // Default process metrics (riskmon_nodejs_*, riskmon_process_*) carry runtime labels such as GC kind and version.
    if (m.name.startsWith('riskmon_nodejs_') || m.name.startsWith('riskmon_process_')) continue;
    for (const v of m.values) {
      for (const [label, value] of Object.entries(v.labels)) {
        if (label === 'le') continue; // histogram buckets
        if (!ALLOWED_LABELS[label]?.includes(String(value))) problems.push(`${m.name} ${label}=${value}`);
      }
    }
  }
  return { series, problems };
}

export async function metricsIdentifierCheck(options: { redisUrl: string | RedisTarget; users: number }): Promise<MetricsCheckFigures> {
  const redis = createRedis(options.redisUrl);
  const metrics = new Metrics();
  const cards = new CardHasher(TEST_CARD_SECRET);
  const identifiers = new Set<string>();
  let events = 0;
  const problems: string[] = [];
  try {
    for (const [round, users] of [Math.max(1, Math.floor(options.users / 50)), options.users].entries()) {
      const prefix = `idr${round}`;
      const settings = chaosSettings(freshNamespace('metrics'));
      const { processor, keys } = buildPipeline(redis, settings, metrics);
      const batch: unknown[] = [...syntheticCharges({ count: users * 3, users, seed: 3 + round, prefix })];
      batch.push({ type: 'charge', eventId: `${prefix}-bad`, userId: `${prefix}-user`, amount: -1 }, { type: `${prefix}-type` }, 'garbage');
      identifiers.add(`${prefix}-type`);
      for (const e of batch as Record<string, unknown>[]) {
        for (const field of ['eventId', 'userId', 'merchantId']) if (typeof e?.[field] === 'string') identifiers.add(e[field] as string);
        if (typeof e?.cardId === 'string') {
          identifiers.add(e.cardId);
          identifiers.add(cards.token(e.cardId));
          identifiers.add(cardLast4(e.cardId));
        }
      }
      for (let i = 0; i < batch.length; i += 2_000) await processor.process(testBatch(batch.slice(i, i + 2_000)), `metrics:${prefix}:${i}`);
      await processor.process(testBatch(batch.slice(0, 10)), `metrics:${prefix}:again`);
      events += batch.length + 10;
      await dropNamespace(redis, keys);
      problems.push(...(await unbounded(metrics)).problems);
    }
    const text = await metrics.registry.metrics();
    // Short ids ("m-1", "u-7") would match inside unrelated text; the synthetic ids checked carry their prefix.
    const leaked = [...identifiers].filter((id) => text.includes(id));
    return {
      users: options.users,
      events,
      identifiersChecked: identifiers.size,
      series: (await unbounded(metrics)).series,
      leaked,
      unboundedLabels: [...new Set(problems)],
    };
  } finally {
    redis.disconnect();
  }
}

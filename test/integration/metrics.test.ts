/** Scrape-time gauges read from real Redis: queue depth and age, settlements, dead letters, Redis memory, build info. */
import { Queue } from 'bullmq';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import { syntheticCharges } from '../../src/events/synthetic.ts';
import { Metrics } from '../../src/metrics.ts';
import { EventProducer } from '../../src/pipeline/producer.ts';
import { riskQueueName, SETTLEMENT_QUEUE } from '../../src/redis/keys.ts';
import { dropContext, testContext } from '../helpers/context.ts';
import { testBatch } from '../helpers/batch.ts';
import { dueSettlements } from '../helpers/shards.ts';

/** Sample values of one metric, keyed by their label text (`{a="b"}` or "" for none). */
async function samples(metrics: Metrics, name: string): Promise<Map<string, number>> {
  const json = await metrics.registry.getSingleMetric(name)!.get();
  return new Map(
    json.values.map((v) => [
      Object.entries(v.labels)
        .map(([k, l]) => `${k}=${l}`)
        .join(','),
      v.value,
    ]),
  );
}

describe('scrape-time metrics', () => {
  let context: Context;
  let queues: Queue[];
  let metrics: Metrics;
  const now = Date.parse('2030-01-01T00:00:00Z');

  beforeEach(() => {
    context = testContext({ pipeline: { shards: 4 } });
    queues = [...[0, 1, 2, 3].map(riskQueueName), SETTLEMENT_QUEUE].map(
      (name) => new Queue(name, { connection: context.queueConnection, prefix: context.keys.queuePrefix(name) }),
    );
    metrics = new Metrics({ defaultMetrics: false });
    metrics.observe({
      queues,
      redis: context.redis,
      keys: context.keys,
      settlementStats: () => context.ledger.stats(),
      caseCounts: (t) => context.cases.counts(t),
      build: { version: '9.9.9', configVersion: context.settings.configVersion },
      now: () => now,
    });
  });
  afterEach(async () => {
    await Promise.all(queues.map((q) => q.close()));
    await dropContext(context);
  });

  it('reports jobs per queue and state and the age of the oldest waiting job (no worker runs here)', async () => {
    const producer = await EventProducer.open({
      connection: context.queueConnection,
      keys: context.keys,
      cards: context.cards,
      config: { ...context.settings.config, pipeline: { ...context.settings.config.pipeline, maxBatch: 10 } },
      clock: 'replay',
    });
    for (const e of syntheticCharges({ count: 120, users: 30, seed: 3, prefix: 'm' })) producer.send(e);
    await producer.close();

    const jobs = await samples(metrics, 'riskmon_queue_jobs');
    const ages = await samples(metrics, 'riskmon_queue_oldest_waiting_age_seconds');
    for (const queue of queues) {
      const waiting = await queue.getJobs(['wait']);
      expect(jobs.get(`queue=${queue.name},state=waiting`)).toBe(waiting.length);
      expect(jobs.get(`queue=${queue.name},state=active`)).toBe(0);
      const oldest = Math.min(...waiting.map((j) => j.timestamp));
      expect(ages.get(`queue=${queue.name}`)).toBe(waiting.length ? (now - oldest) / 1000 : 0);
    }
    const total = [...jobs].filter(([k]) => k.endsWith('state=waiting')).reduce((s, [, v]) => s + v, 0);
    expect(total).toBeGreaterThanOrEqual(12);
  });

  it('reports held and pending settlements, the overdue time, dead letters, Redis memory and build info', async () => {
    const events = [...syntheticCharges({ count: 400, users: 20, seed: 11, prefix: 's' })];
    const results = await context.processor.process(testBatch([...events, { type: 'charge', eventId: 'broken' }]), 'test:metrics');
    expect(results.some((r) => r.outcome === 'review')).toBe(true);
    const stats = await context.ledger.stats();
    expect(stats.heldCount).toBeGreaterThan(0);

    const one = async (name: string) => (await samples(metrics, name)).get('');
    expect(await one('riskmon_settlements_held')).toBe(stats.heldCount);
    expect(await one('riskmon_settlements_held_fen')).toBe(stats.heldAmount);
    expect(await one('riskmon_settlements_pending')).toBe(stats.scheduledCount);
    expect(await one('riskmon_settlements_pending_fen')).toBe(stats.scheduledAmount);
    // The earliest due settlement of every shard's.
    const due = await dueSettlements(context.redis, context.keys);
    expect(new Set(due.map(([eventId]) => context.keys.shardOf(events.find((e) => e.eventId === eventId)!.userId))).size).toBeGreaterThan(1);
    const [, firstDue] = due[0]!;
    expect(await one('riskmon_settlement_overdue_seconds')).toBe((now - firstDue) / 1000);
    expect(await one('riskmon_dead_letter_entries')).toBe(1);
    expect(await one('riskmon_redis_memory_used_bytes')).toBeGreaterThan(0);
    const [, maxmemory] = (await context.redis.config('GET', 'maxmemory')) as [string, string];
    expect(await one('riskmon_redis_memory_max_bytes')).toBe(Number(maxmemory));
    expect(await samples(metrics, 'riskmon_build_info')).toEqual(new Map([[`version=9.9.9,config_version=${context.settings.configVersion}`, 1]]));
  });

  it('reports nothing overdue when every settlement lies ahead', async () => {
    metrics.observe({
      queues,
      redis: context.redis,
      keys: context.keys,
      settlementStats: () => context.ledger.stats(),
      caseCounts: (t) => context.cases.counts(t),
      build: { version: '9.9.9', configVersion: 'x' },
      now: () => Date.parse('2000-01-01T00:00:00Z'),
    });
    await context.processor.process(testBatch([...syntheticCharges({ count: 20, users: 5, seed: 1, prefix: 'f' })]), 'test:f');
    expect((await samples(metrics, 'riskmon_settlement_overdue_seconds')).get('')).toBe(0);
  });

  it('starts every known label value of rejections and calibration at zero', async () => {
    const fresh = new Metrics({ defaultMetrics: false });
    expect(await samples(fresh, 'riskmon_calibration_accounts_total')).toEqual(new Map([['change=up', 0], ['change=down', 0], ['change=unchanged', 0]]));
    expect(await samples(fresh, 'riskmon_calibration_runs_total')).toEqual(new Map([['result=completed', 0], ['result=refused', 0], ['result=failed', 0]]));
    expect((await samples(fresh, 'riskmon_calibration_warnings_total')).get('warning=asset_redemption')).toBe(0);
    // Workers never meet a line: "invalid_json" and "too_long" are producer refusals (riskmon_producer_rejected_events).
    expect([...(await samples(fresh, 'riskmon_events_rejected_total')).keys()].sort()).toEqual(
      ['bad_payload', 'before_opening', 'clock_ahead', 'conflict', 'evaluation_error', 'event_time', 'id_conflict', 'invalid_field', 'no_credit_account', 'not_an_object', 'unknown_charge', 'unknown_type'].map((r) => `reason=${r}`),
    );
    // Without sources (a CLI's metrics) the Redis-backed gauges are simply empty.
    expect((await samples(fresh, 'riskmon_queue_jobs')).size).toBe(0);
  });
});

/**
 * The workers' watchdog (src/redis/worker-watchdog.ts): a worker that stops taking jobs while it looks alive (as
 * one whose blocking connection wedged after a failover, BullMQ issue 4138) leaves its queue standing, jobs due and
 * none running; the watchdog replaces it and the queue moves again. A paused queue is left alone. Found by the
 * failover chaos test in CI: the settlement worker stood still after its master failed over.
 */
import { Queue, type Worker } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { syntheticCharges } from '../../src/events/synthetic.ts';
import { openRiskQueues } from '../../src/pipeline/producer.ts';
import { SETTLEMENT_QUEUE } from '../../src/redis/keys.ts';
import type { Service } from '../../src/service.ts';
import { startTestService, stopTestService } from '../helpers/service.ts';
import { scheduleDecision } from '../helpers/settlement.ts';
import { decisionStreamLength } from '../helpers/shards.ts';

let service: Service | undefined;
afterEach(async () => {
  if (service) await stopTestService(service);
  service = undefined;
});

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A worker that has stopped taking batches while it looks alive, as one whose blocking connection wedged does.
 * (Ending its blocking connection is not enough: BullMQ 6 notices that and reconnects; the wedges of issue 4138
 * are the ones it does not notice.) Paused locally, the queue itself not paused.
 */
async function wedge(worker: Worker): Promise<void> {
  await worker.pause(true);
  expect(worker.isRunning()).toBe(true);
}

const repairs = async (s: Service, component: string) => (await s.context.metrics.schedulerRepairs.get()).values.find((v) => v.labels.component === component)?.value ?? 0;

/**
 * Loses the settlement scheduler's next tick as a failover can (the master's last writes gone): its delayed job
 * deleted while no tick runs, the scheduler itself left in place.
 */
const LOSE_NEXT_JOB = `
if redis.call('LLEN', KEYS[1]) > 0 or redis.call('LLEN', KEYS[2]) > 0 then return -1 end
local ids = redis.call('ZRANGE', KEYS[3], 0, -1)
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[3], id)
  redis.call('DEL', ARGV[1] .. id)
end
return #ids`;

const restarts = async (s: Service, component = 'risk') => (await s.context.metrics.watchdogRestarts.get()).values.find((v) => v.labels.component === component)?.value ?? 0;

describe('worker watchdog', () => {
  it('replaces a worker whose shard stands still with batches waiting, and the shard is decided again', { timeout: 60_000 }, async () => {
    service = await startTestService({ components: ['risk'], overrides: { pipeline: { shards: 1, watchdogSeconds: 1 } } });
    const s = service;
    const [first] = s.workers;
    await wedge(first!);
    const events = [...syntheticCharges({ count: 300, users: 30, seed: 3, prefix: s.context.keys.namespace })];
    // Two batches a while apart: the first may still be taken by the fetch the worker had started before it stopped.
    for (const part of [events.slice(0, 10), events.slice(10)]) {
      const producer = await s.context.openProducer({ clock: 'replay' });
      for (const e of part) producer.send(e);
      await producer.close();
      await new Promise((r) => setTimeout(r, 300));
    }
    await until('the batches to be decided', async () => (await decisionStreamLength(s.context.redis, s.context.keys)) === 300);
    expect(await restarts(s)).toBeGreaterThanOrEqual(1);
    // The service's own list (readiness) holds the new worker, running.
    expect(s.workers).not.toContain(first);
    expect(s.workers.every((w) => w.isRunning())).toBe(true);
  });

  it('leaves a paused shard alone: batches wait, no worker is replaced', { timeout: 60_000 }, async () => {
    service = await startTestService({ components: ['risk'], overrides: { pipeline: { shards: 1, watchdogSeconds: 1 } } });
    const s = service;
    const [queue] = await openRiskQueues(s.context.queueConnection, s.context.keys, 1);
    try {
      await queue!.pause();
      const producer = await s.context.openProducer({ clock: 'replay' });
      for (const e of syntheticCharges({ count: 50, users: 5, seed: 4, prefix: s.context.keys.namespace })) producer.send(e);
      await producer.close();
      expect(await queue!.getWaitingCount()).toBeGreaterThan(0);
      // Four watchdog periods with batches waiting.
      await new Promise((r) => setTimeout(r, 2_500));
      expect(await restarts(s)).toBe(0);
      await queue!.resume();
      await until('the batches to be decided', async () => (await decisionStreamLength(s.context.redis, s.context.keys)) === 50);
      expect(await restarts(s)).toBe(0);
    } finally {
      await queue!.close();
    }
  });

  it('replaces a settlement worker whose scheduled tick stands overdue, and what is due is paid', { timeout: 60_000 }, async () => {
    service = await startTestService({ components: ['settlement'], overrides: { settlement: { tickSeconds: 1 }, pipeline: { watchdogSeconds: 1 } } });
    const s = service;
    const [first] = s.workers;
    await wedge(first!);
    // A tick the worker had already fetched runs out first (nothing is due yet).
    await new Promise((r) => setTimeout(r, 1_500));
    await scheduleDecision(s.context, 'due-1', Date.now() - 60_000);
    await until('the due settlement to be paid', async () => (await s.context.ledger.stats()).settledCount === 1);
    expect(await restarts(s, 'settlement')).toBeGreaterThanOrEqual(1);
    expect(s.workers).not.toContain(first);
  });

  it('installs the settlement scheduler again when its queue has lost the next tick, and what is due is paid', { timeout: 60_000 }, async () => {
    service = await startTestService({ components: ['settlement'], overrides: { settlement: { tickSeconds: 1 }, pipeline: { watchdogSeconds: 1 } } });
    const s = service;
    const queue = new Queue(SETTLEMENT_QUEUE, { connection: s.context.queueConnection, prefix: s.context.keys.queuePrefix(SETTLEMENT_QUEUE) });
    try {
      const k = queue.keys;
      await until('the next tick to be lost', async () => Number(await s.context.redis.eval(LOSE_NEXT_JOB, 3, k.active!, k.wait!, k.delayed!, queue.toKey(''))) > 0);
      const counts = await queue.getJobCounts('wait', 'delayed', 'active', 'prioritized');
      expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(0);
      await scheduleDecision(s.context, 'due-after-loss', Date.now() - 60_000);
      await until('the due settlement to be paid', async () => (await s.context.ledger.stats()).settledCount === 1);
      expect(await repairs(s, 'settlement')).toBeGreaterThanOrEqual(1);
    } finally {
      await queue.close();
    }
  });
});

/**
 * pipeline.replicaAcks on a private master with one replica: flush() returns only once the replica holds what the
 * producer wrote, fails with an EnqueueError when it does not confirm in time, and the resend that error asks for is
 * decided once.
 */
import { isClaimed } from '../helpers/claims.ts';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import type { Context } from '../../src/context.ts';
import { syntheticCharges } from '../../src/events/synthetic.ts';
import { silentLogger } from '../../src/logger.ts';
import { EnqueueError } from '../../src/pipeline/producer.ts';
import { startRiskWorkers } from '../../src/pipeline/risk-workers.ts';
import { startRedisServer, type LocalRedis } from '../../src/redis/local-server.ts';
import { unfinishedJobs, waitFor } from '../chaos/harness.ts';
import { dropContext, testContext } from '../helpers/context.ts';
import { decisionStreamLength } from '../helpers/shards.ts';

let master: LocalRedis;
let replica: LocalRedis;
let contexts: Context[] = [];

beforeAll(async () => {
  master = await startRedisServer();
  replica = await startRedisServer({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
  const probe = new Redis(master.url);
  await waitFor(async () => /slave0:.*state=online/.test(await probe.info('replication')), 10_000, 'the replica to be online', 50);
  probe.disconnect();
}, 30_000);
afterAll(async () => {
  replica?.process.kill('SIGCONT');
  await replica?.stop();
  await master?.stop();
});
afterEach(async () => {
  replica.process.kill('SIGCONT');
  for (const c of contexts) await dropContext(c);
  contexts = [];
});

function context(replicaAcks: number, replicaAckTimeoutMs = 2_000): Context {
  const c = testContext({ pipeline: { shards: 2, maxBatch: 50, lingerMs: 0, replicaAcks, replicaAckTimeoutMs } }, master.url);
  contexts.push(c);
  return c;
}

const charges = (prefix: string, count = 40) => [...syntheticCharges({ count, users: 10, seed: 5, prefix, startMs: Date.now() - 20 * 86_400_000 })];

test('with replicaAcks 1, flush() waits for a replica that lags and returns once it holds everything sent', async () => {
  const ctx = context(1);
  const onReplica = new Redis(replica.url);
  try {
    const producer = await ctx.openProducer({ clock: 'replay' });
    const events = charges(ctx.keys.namespace);
    replica.process.kill('SIGSTOP');
    setTimeout(() => replica.process.kill('SIGCONT'), 400);
    const started = performance.now();
    for (const e of events) producer.send(e);
    await producer.flush();
    expect(performance.now() - started).toBeGreaterThanOrEqual(390);
    expect(producer.accepted).toBe(events.length);
    const claims = await Promise.all(events.map((e) => isClaimed(onReplica, ctx.keys, e.eventId)));
    expect(claims.every(Boolean)).toBe(true);
    await producer.close();
  } finally {
    onReplica.disconnect();
  }
});

test('a replica that does not confirm fails the flush within the timeout; the resend it asks for is decided once', async () => {
  const ctx = context(1, 300);
  const events = charges(ctx.keys.namespace);
  replica.process.kill('SIGSTOP');
  const unconfirmed = await ctx.openProducer({ clock: 'replay' });
  for (const e of events) unconfirmed.send(e);
  const started = performance.now();
  const error = await unconfirmed.flush().then(() => undefined, (e: unknown) => e);
  const waited = performance.now() - started;
  expect(error).toBeInstanceOf(EnqueueError);
  expect((error as Error).message).toMatch(/could not confirm within 300 ms that 1 replica holds what was sent: 127\.0\.0\.1:\d+ had 0/);
  expect((error as Error).message).toMatch(/send it again/);
  expect(waited).toBeGreaterThanOrEqual(290);
  await unconfirmed.close();

  // Without replicaAcks the same flush acknowledges what only the master holds.
  const unsafe = await context(0).openProducer({ clock: 'replay' });
  unsafe.send(charges(`${ctx.keys.namespace}x`, 1)[0]!);
  await unsafe.flush();
  await unsafe.close();

  replica.process.kill('SIGCONT');
  const resend = await ctx.openProducer({ clock: 'replay' });
  for (const e of events) resend.send(e);
  await resend.flush();
  await resend.close();

  const workers = await startRiskWorkers({ connection: ctx.queueConnection, keys: ctx.keys, pipeline: ctx.settings.config.pipeline, processor: ctx.processor, logger: silentLogger, metrics: ctx.metrics });
  try {
    await waitFor(async () => (await unfinishedJobs(ctx.redis, ctx.keys, 2)) === 0, 30_000, 'the queues to drain', 50);
  } finally {
    await workers.close();
  }
  // Both sends were queued (the first stayed on the master), and each event was decided once.
  expect(await decisionStreamLength(ctx.redis, ctx.keys)).toBe(events.length);
}, 30_000);

/**
 * Item 10, backpressure: a producer much faster than the workers (one worker process, small batches). Unbounded, the
 * queues and Redis memory grow with the backlog; in bounded mode (`maxWaitingJobsPerShard`) the producer either waits
 * (`sendWhenReady`) or is refused with a BackpressureError and retries, and the queue depth stays under the bound.
 * In every mode each event gets exactly one decision: nothing is dropped silently.
 */
import { createContext } from '../../src/context.ts';
import { syntheticCharges } from '../../src/events/synthetic.ts';
import { silentLogger } from '../../src/logger.ts';
import { BackpressureError, EventProducer } from '../../src/pipeline/producer.ts';
import { freshNamespace } from '../helpers/context.ts';
import { ReferenceModel } from '../helpers/reference-model.ts';
import { chaosSettings, Fleet, riskQueueKey, sleep, unfinishedJobs, verifyNamespace, waitFor, writeConfigFile, type Verification } from './harness.ts';
import { RestartableRedis } from './redis-restart.ts';

export type BackpressureMode = 'unbounded' | 'wait' | 'refuse';

export interface BackpressureOptions {
  mode: BackpressureMode;
  events: number;
  users: number;
  /** Batches allowed to wait per shard in the bounded modes. */
  bound: number;
  maxBatch: number;
  /** Redis maxmemory, for the memory-alert ratio. @defaultValue "256mb" */
  maxmemory?: string;
}

export interface BackpressureFigures {
  mode: BackpressureMode;
  events: number;
  bound: number | null;
  maxWaitingJobs: number;
  maxWaitingJobsPerShard: number;
  refusals: number;
  sendSeconds: number;
  /** Redis memory of one queued batch (MEMORY USAGE of job hashes), bytes per event. */
  bytesPerQueuedEvent: number;
  /** Largest backlog seen, in events, and the Redis memory it held. */
  peakBacklogEvents: number;
  peakBacklogMb: number;
  peakUsedMemoryMb: number;
  peakMemoryRatio: number;
  seconds: number;
  verification: Verification;
}

export async function backpressureScenario(options: BackpressureOptions): Promise<BackpressureFigures> {
  const redis = await RestartableRedis.start(['--maxmemory', options.maxmemory ?? '256mb']);
  const namespace = freshNamespace('chaos-bp');
  const overrides = { pipeline: { maxBatch: options.maxBatch, lingerMs: 2 } };
  const settings = chaosSettings(namespace, overrides);
  const configFile = writeConfigFile(overrides);
  const context = createContext(settings, redis.url, silentLogger);
  const shards = settings.config.pipeline.shards;
  const fleet = new Fleet({ REDIS_URL: redis.url, RISKMON_NAMESPACE: namespace, RISKMON_CONFIG: configFile.path });
  const input = [...syntheticCharges({ count: options.events, users: options.users, seed: 53, prefix: namespace })];
  const started = performance.now();
  let producer: EventProducer | undefined;
  let sampling = true;
  let maxWaitingJobs = 0;
  let maxWaitingJobsPerShard = 0;
  let peakUsed = 0;
  let maxmemory = 1;
  const sampler = (async () => {
    while (sampling) {
      const pipe = context.redis.pipeline();
      for (let s = 0; s < shards; s++) pipe.llen(riskQueueKey(context.keys, s, 'wait'));
      pipe.info('memory');
      const replies = (await pipe.exec()) ?? [];
      const waits = replies.slice(0, shards).map(([, n]) => Number(n));
      maxWaitingJobs = Math.max(maxWaitingJobs, waits.reduce((a, b) => a + b, 0));
      maxWaitingJobsPerShard = Math.max(maxWaitingJobsPerShard, ...waits);
      const info = String(replies[shards]![1]);
      peakUsed = Math.max(peakUsed, Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0));
      maxmemory = Number(/maxmemory:(\d+)/.exec(info)?.[1] ?? 1);
      await sleep(20);
    }
  })();
  try {
    fleet.start('risk-worker');
    await fleet.processes()[0]!.waitForLine('riskmon started');
    producer = await context.openProducer({ clock: 'replay', maxWaitingJobsPerShard: options.mode === 'unbounded' ? 0 : options.bound, depthCheckMs: 20 });
    let refusals = 0;
    const sendStart = performance.now();
    for (const [i, event] of input.entries()) {
      if (options.mode === 'wait') await producer.sendWhenReady(event);
      else if (options.mode === 'refuse') {
        // A refused event was not accepted: the caller keeps it and offers it again.
        for (;;) {
          try {
            producer.send(event);
            break;
          } catch (e) {
            if (!(e instanceof BackpressureError)) throw e;
            refusals++;
            await sleep(20);
          }
        }
      } else producer.send(event);
      if (i % 500 === 499) await producer.flush();
    }
    await producer.flush();
    const sendSeconds = (performance.now() - sendStart) / 1000;

    await waitFor(async () => (await unfinishedJobs(context.redis, context.keys, shards)) === 0, 300_000, 'the queues to drain', 250);
    sampling = false;
    await sampler;
    // What a queued batch costs in Redis, per event (sampled job hashes; a waiting job holds the same data).
    let sampledBytes = 0;
    let sampledEvents = 0;
    let sampledJobs = 0;
    // The newest jobs: completed ones are kept (the last 100 per shard), older ones are gone.
    const lastId = Number(await context.redis.get(riskQueueKey(context.keys, 0, 'id'))) || 40;
    for (let id = Math.max(1, lastId - 39); id <= lastId; id++) {
      const key = riskQueueKey(context.keys, 0, String(id));
      const [bytes, data] = await Promise.all([context.redis.memory('USAGE', key, 'SAMPLES', 0), context.redis.hget(key, 'data')]);
      if (!bytes || !data) continue;
      sampledBytes += Number(bytes);
      sampledEvents += (JSON.parse(data) as { events: unknown[] }).events.length;
      sampledJobs++;
    }
    const bytesPerQueuedEvent = sampledEvents ? sampledBytes / sampledEvents : 0;
    const eventsPerJob = sampledJobs ? sampledEvents / sampledJobs : options.maxBatch;
    const model = ReferenceModel.fromConfig(settings.config);
    for (const e of input) model.apply(e);
    const verification = await verifyNamespace(context.redis, context.keys, context.cards, model, { input });
    return {
      mode: options.mode,
      events: input.length,
      bound: options.mode === 'unbounded' ? null : options.bound,
      maxWaitingJobs,
      maxWaitingJobsPerShard,
      refusals,
      sendSeconds,
      bytesPerQueuedEvent: Math.round(bytesPerQueuedEvent),
      peakBacklogEvents: Math.round(maxWaitingJobs * eventsPerJob),
      peakBacklogMb: Math.round(((maxWaitingJobs * eventsPerJob * bytesPerQueuedEvent) / 1_048_576) * 100) / 100,
      peakUsedMemoryMb: Math.round((peakUsed / 1_048_576) * 10) / 10,
      peakMemoryRatio: Math.round((peakUsed / maxmemory) * 1000) / 1000,
      seconds: (performance.now() - started) / 1000,
      verification,
    };
  } finally {
    sampling = false;
    await sampler.catch(() => undefined);
    await producer?.close();
    await fleet.stop();
    await context.close();
    await redis.stop();
    configFile.remove();
  }
}

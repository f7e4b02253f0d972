import { afterEach, expect, test } from 'vitest';
import { syntheticCharges } from '../../src/events/synthetic.ts';
import { BackpressureError, EventProducer } from '../../src/pipeline/producer.ts';
import type { Context } from '../../src/context.ts';
import { dropContext, testContext } from '../helpers/context.ts';
import { backpressureScenario } from './backpressure.ts';
import { riskQueueKey } from './harness.ts';

let context: Context | undefined;
afterEach(async () => {
  if (context) await dropContext(context);
  context = undefined;
});

test('bounded producer refuses the event that would overfill a shard, and only that one', async () => {
  context = testContext({ pipeline: { shards: 1, lingerMs: 0 } });
  const producer = await context.openProducer({ clock: 'replay', maxWaitingJobsPerShard: 2 });
  const [a, b, c] = [...syntheticCharges({ count: 3, prefix: context.keys.namespace })];
  producer.send(a!);
  producer.send(b!);
  expect(() => producer.send(c!)).toThrow(BackpressureError);
  expect(() => producer.send(c!)).toThrow(/shard 0 has 2 or more batches waiting .* was not accepted; send it again later/);
  await producer.flush();
  expect(producer.sent).toBe(2);
  expect(await producer.waiting()).toBe(2);
  // Refusal is not a failure: once there is room again the producer takes events.
  await context.redis.del(riskQueueKey(context.keys, 0, 'wait'));
  await expect(producer.sendWhenReady(c!, 5_000)).resolves.toBeUndefined();
  await producer.close();
});

// Item 10 at small size (full size: npm run chaos).
test('producer faster than workers: unbounded the backlog grows, bounded it stays under the bound; nothing dropped', async () => {
  const common = { events: 8_000, users: 1_000, bound: 4, maxBatch: 20 };
  const unbounded = await backpressureScenario({ mode: 'unbounded', ...common });
  const waiting = await backpressureScenario({ mode: 'wait', ...common });
  const refused = await backpressureScenario({ mode: 'refuse', ...common });
  for (const f of [unbounded, waiting, refused]) {
    expect(f.verification.problems).toEqual([]);
    expect(f.verification.decisions).toBe(8_000);
  }
  expect(unbounded.maxWaitingJobsPerShard).toBeGreaterThan(4);
  expect(waiting.maxWaitingJobsPerShard).toBeLessThanOrEqual(4);
  expect(refused.maxWaitingJobsPerShard).toBeLessThanOrEqual(4);
  expect(refused.refusals).toBeGreaterThan(0);
  expect(unbounded.peakBacklogEvents).toBeGreaterThan(waiting.peakBacklogEvents);
}, 120_000);

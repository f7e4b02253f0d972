import { expect, test } from 'vitest';
import { redisUnreachableScenario } from './redis-unreachable.ts';

// Item 9 with a 5 s outage (npm run chaos: 30 s).
test('Redis unreachable mid-stream: workers pause and resume by themselves, a fail-fast producer fails with a clear error', async () => {
  const f = await redisUnreachableScenario({ events: 3_000, users: 300, rate: 500, outageMs: 5_000 });
  // The outage was real (nothing was decided during it) and survived without restarting anything.
  expect(f.decisionsDuringOutage).toBe(0);
  expect(f.workerProcessesRestarted).toBe(0);
  expect(f.verification.problems).toEqual([]);
  expect(f.verification.decisions).toBe(3_000);
  // The fail-fast producer failed while Redis was still away (it would otherwise hang until the outage ended).
  expect(f.failFast.openProducerError).toMatch(/^EnqueueError: could not (enqueue a batch|claim the eventIds) .*ECONNREFUSED.*send it again/);
  expect(f.failFast.newProducerError).toMatch(/^EnqueueError: cannot open the risk queues: .*ECONNREFUSED.*is Redis running/);
}, 90_000);

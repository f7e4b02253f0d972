import { expect, test } from 'vitest';
import { redisUrl } from '../helpers/context.ts';
import { workerCrashScenario } from './worker-crash.ts';

// Item 1 at small size (full size: npm run chaos).
test('kill -9 of worker processes mid-stream: every event decided once, state equals the model, settled once', async () => {
  const f = await workerCrashScenario({ redisUrl: redisUrl(), events: 8_000, users: 500, rate: 0, riskWorkers: 2, killEveryMs: 1_500 });
  expect(f.verification.problems).toEqual([]);
  expect(f.verification.decisions).toBe(f.uniqueEvents);
  expect(f.verification.streamEntries).toBe(f.uniqueEvents);
  expect(f.verification.settled).toBeGreaterThan(0);
  // The test must have bitten: processes were killed holding batches, and those batches were delivered again.
  expect(f.kills).toBeGreaterThan(0);
  expect(f.redeliveredBatches).toBeGreaterThan(0);
}, 120_000);

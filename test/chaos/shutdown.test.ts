import { expect, test } from 'vitest';
import { redisUrl } from '../helpers/context.ts';
import { shutdownUnderLoadScenario, shutdownWithRedisFrozenScenario } from './shutdown.ts';

// Item 8 at small size (full size: npm run chaos).
test('SIGTERM under load: clean exit, no batch left active, nothing lost or counted twice', async () => {
  const f = await shutdownUnderLoadScenario({ redisUrl: redisUrl(), events: 20_000, users: 400, rate: 400, stops: 3, runMs: 700, graceMs: 10_000 });
  expect(f.verification.problems).toEqual([]);
  for (const stop of f.stops) {
    expect(stop.exitCode).toBe(0);
    expect(stop.activeAfter).toBe(0);
  }
  // Every stop happened while the producer was still sending.
  expect(f.stops.every((s) => s.underLoad)).toBe(true);
  expect(f.stalledRecoveries).toBe(0);
}, 90_000);

test('SIGTERM while Redis does not answer: exit after the grace period, the batch is redelivered, nothing lost', async () => {
  const f = await shutdownWithRedisFrozenScenario({ events: 3_000, users: 300, graceMs: 2_000 });
  expect(f.exitCode).toBe(1);
  expect(f.loggedTooLong).toBe(true);
  expect(f.verification.problems).toEqual([]);
  expect(f.verification.decisions).toBe(3_000);
}, 90_000);

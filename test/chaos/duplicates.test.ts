import { expect, test } from 'vitest';
import { redisUrl } from '../helpers/context.ts';
import { duplicatesScenario, shuffleInBursts } from './duplicates.ts';

test('shuffleInBursts permutes within bursts only', () => {
  const items = Array.from({ length: 100 }, (_, i) => i);
  const out = shuffleInBursts(items, 10, 1);
  expect(out).not.toEqual(items);
  for (let b = 0; b < 10; b++) expect(out.slice(b * 10, b * 10 + 10).sort((x, y) => x - y)).toEqual(items.slice(b * 10, b * 10 + 10));
});

// Item 3 at small size (full size: npm run chaos).
test('the same stream three times, shuffled in bursts, concurrently: one decision per event, totals exact', async () => {
  const f = await duplicatesScenario({ redisUrl: redisUrl(), events: 3_000, users: 200, burst: 50 });
  expect(f.verification.problems).toEqual([]);
  expect(f.verification.decisions).toBe(3_000);
  expect(f.verification.streamEntries).toBe(3_000);
  expect(f.duplicatesAnswered).toBe(f.deliveries - 3_000);
  expect(f.usersReordered).toBeGreaterThan(0);
}, 60_000);

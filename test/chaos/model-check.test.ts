import { expect, test } from 'vitest';
import { modelCheck } from './model-check.ts';

// Item 4: the service's decisions equal the reference model on generated streams (full size: npm run chaos).
test('model check: generated streams decide exactly as the reference model says', async () => {
  const f = await modelCheck({ runs: 60, streamsPerRun: 20 });
  expect(f.streams).toBe(1_200);
  // The generator must reach every rule, every outcome, duplicates and non-default settings, or the check is hollow.
  expect(f.duplicates).toBeGreaterThan(0);
  expect(f.nonDefaultConfigs).toBeGreaterThan(0);
  for (const outcome of ['approve', 'review', 'decline']) expect(f.decisions[outcome]).toBeGreaterThan(0);
  for (const rule of ['same_card_burst', 'night_large_amount', 'user_daily_cap']) expect(f.ruleHits[rule]).toBeGreaterThan(0);
}, 120_000);

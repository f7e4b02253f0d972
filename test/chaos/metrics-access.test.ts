import { expect, test } from 'vitest';
import { redisUrl } from '../helpers/context.ts';
import { metricsIdentifierCheck } from './metrics-check.ts';

// Item 11, the part in this tree (the dashboard's 401 and read-only checks come with the operate issue's server).
test('metrics carry no user, card, merchant or event identifier; label values come from finite sets', async () => {
  const f = await metricsIdentifierCheck({ redisUrl: redisUrl(), users: 1_000 });
  expect(f.identifiersChecked).toBeGreaterThan(3_000);
  expect(f.leaked).toEqual([]);
  expect(f.unboundedLabels).toEqual([]);
});

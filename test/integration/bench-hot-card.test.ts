/** The hot-card benchmark at tiny size: it runs, the window stays bounded and the burst rule still fires (no timing). */
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import { benchHotCard } from '../../scripts/bench-hot-card.ts';
import { dropContext, testContext } from '../helpers/context.ts';

let ctx: Context;
beforeEach(() => {
  ctx = testContext();
});
afterEach(async () => {
  await dropContext(ctx);
});

it('hammers one card: its window stays within the bound, every charge after the second is reviewed', async () => {
  const r = await benchHotCard(ctx, 1_000);
  expect(r.hotWindowEntries).toBeGreaterThan(0);
  expect(r.hotWindowEntries).toBeLessThanOrEqual(r.thinAbove);
  expect(r.hotOutcomes).toEqual({ approve: 2, review: 998 });
  expect(r.hotUsPerCharge).toBeGreaterThan(0);
  expect(r.everydayUsPerCharge).toBeGreaterThan(0);
});

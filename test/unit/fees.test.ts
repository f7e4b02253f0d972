/** Merchant fees (issue 16): tiers by last month's volume, half-up rounding to the fen, discounts above the floor. */
import { describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.ts';
import { feeOf, feesFor, tierOf, type FeeSchedule } from '../../src/settlement/fees.ts';

const schedule = (over: Partial<FeeSchedule> = {}): FeeSchedule => ({ ...loadSettings({}).config.settlement.fees, ...over });

describe('fee tiers', () => {
  it('puts exactly 50,000,000 fen of last month in tier 2 and one fen less in tier 1; 200,000,000 in tier 3', () => {
    const s = schedule();
    expect(tierOf(0, s)).toBe(1);
    expect(tierOf(49_999_999, s)).toBe(1);
    expect(tierOf(50_000_000, s)).toBe(2);
    expect(tierOf(199_999_999, s)).toBe(2);
    expect(tierOf(200_000_000, s)).toBe(3);
    expect(tierOf(Number.MAX_SAFE_INTEGER, s)).toBe(3);
  });
});

describe('fees of a transaction', () => {
  it('rounds each fee half up to a whole fen, at exactly .5 and just below', () => {
    // 250 fen × 0.60% = 1.5 fen → 2; × 0.10% = 0.25 → 0.
    expect(feesFor(250, 1, 'm', schedule())).toEqual({ tier: 1, baseBp: 60, techBp: 10, baseFeeFen: 2, techFeeFen: 0, netFen: 248 });
    // 249 fen × 0.60% = 1.494 → 1.
    expect(feeOf(249, 60)).toBe(1);
    expect(feeOf(5_000, 10)).toBe(5);
    expect(feeOf(4_995, 10)).toBe(5);
    expect(feeOf(4_994, 10)).toBe(5);
    expect(feeOf(4_949, 10)).toBe(5);
    expect(feeOf(4_500, 10)).toBe(5);
    expect(feeOf(4_499, 10)).toBe(4);
  });

  it('applies each tier\'s rates to a large charge: 1,000,000 fen', () => {
    expect(feesFor(1_000_000, 1, 'm', schedule())).toMatchObject({ baseFeeFen: 6_000, techFeeFen: 1_000, netFen: 993_000 });
    expect(feesFor(1_000_000, 2, 'm', schedule())).toMatchObject({ baseFeeFen: 5_500, techFeeFen: 800, netFen: 993_700 });
    expect(feesFor(1_000_000, 3, 'm', schedule())).toMatchObject({ baseFeeFen: 5_000, techFeeFen: 500, netFen: 994_500 });
  });

  it('lowers the base rate by a merchant discount, never below the tier floor, and never the technical fee', () => {
    const s = schedule({ merchantDiscountsBp: { 'm-deal': 8, 'm-big-deal': 40 } });
    expect(feesFor(1_000_000, 1, 'm-deal', s)).toMatchObject({ baseBp: 52, baseFeeFen: 5_200, techFeeFen: 1_000 });
    // 60 − 40 = 20, below tier 1's floor of 50; tier 3: 50 − 40 = 10, below its floor of 30.
    expect(feesFor(1_000_000, 1, 'm-big-deal', s)).toMatchObject({ baseBp: 50, baseFeeFen: 5_000 });
    expect(feesFor(1_000_000, 3, 'm-big-deal', s)).toMatchObject({ baseBp: 30, baseFeeFen: 3_000, techFeeFen: 500 });
  });

  it('gives a reversal back its gross and fees, negative, as the same computation on the refunded part', () => {
    const paid = feesFor(250, 1, 'm', schedule());
    const reversal = feesFor(-250, 1, 'm', schedule());
    expect(reversal).toEqual({ ...paid, baseFeeFen: -paid.baseFeeFen, techFeeFen: -paid.techFeeFen, netFen: -paid.netFen });
  });
});

describe('fee configuration', () => {
  it('refuses tiers out of order, a bounded last tier, a floor above its base rate, or rates over the whole amount', () => {
    const bad = (tiers: unknown) => () => loadSettings({ overrides: { settlement: { fees: { tiers, merchantDiscountsBp: {} } } } });
    expect(bad([{ belowFen: 10, baseBp: 60, techBp: 10, floorBp: 50 }])).toThrow(/settlement\.fees\.tiers\.0\.belowFen.*last tier has no upper bound/s);
    expect(bad([{ belowFen: 100, baseBp: 60, techBp: 10, floorBp: 50 }, { belowFen: 50, baseBp: 60, techBp: 10, floorBp: 50 }, { belowFen: null, baseBp: 60, techBp: 10, floorBp: 50 }])).toThrow(/tiers\.1\.belowFen.*above the tier before's \(100\)/s);
    expect(bad([{ belowFen: null, baseBp: 60, techBp: 10, floorBp: 70 }])).toThrow(/tiers\.0\.floorBp.*not be above baseBp/s);
    expect(bad([{ belowFen: null, baseBp: 9_000, techBp: 2_000, floorBp: 0 }])).toThrow(/must not exceed 10000/);
    expect(bad([{ belowFen: null, baseBp: 0.5, techBp: 10, floorBp: 0 }])).toThrow(/baseBp/);
  });
});

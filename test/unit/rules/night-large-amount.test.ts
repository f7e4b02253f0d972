/** night_large_amount is decided before the script call: its decide() alone, at the edges of its window. */
import { describe, expect, it } from 'vitest';
import { nightLargeAmount } from '../../../src/rules/night-large-amount.ts';
import type { ChargeFacts } from '../../../src/rules/rule.ts';

const config = nightLargeAmount.config.parse(nightLargeAmount.defaults);
const at = (localTime: string, amount = 500_000): ChargeFacts => {
  const [h, m, s] = localTime.split(':').map(Number) as [number, number, number];
  return { amount, merchantId: 'm-1', occurredAtMs: 0, localTime, secondOfDay: h * 3600 + m * 60 + s };
};

describe('night_large_amount', () => {
  it('fires in [from, to) across midnight, at or above the amount', () => {
    expect(nightLargeAmount.decide!(at('22:59:59'), config)).toBeNull();
    expect(nightLargeAmount.decide!(at('23:00:00'), config)).toBe('5000.00 CNY at 23:00:00 local time, inside the night window 23:00–02:00 (decline at 5000.00 CNY or more)');
    expect(nightLargeAmount.decide!(at('01:59:59'), config)).not.toBeNull();
    expect(nightLargeAmount.decide!(at('02:00:00'), config)).toBeNull();
    expect(nightLargeAmount.decide!(at('23:30:00', 499_999), config)).toBeNull();
  });

  it('handles a window that does not wrap midnight', () => {
    const day = nightLargeAmount.config.parse({ from: '01:00', to: '05:00', minAmountFen: 100 });
    expect(nightLargeAmount.decide!(at('00:59:59', 100), day)).toBeNull();
    expect(nightLargeAmount.decide!(at('01:00:00', 100), day)).toMatch(/^1\.00 CNY at 01:00:00 local time, inside the night window 01:00–05:00/);
    expect(nightLargeAmount.decide!(at('05:00:00', 100), day)).toBeNull();
  });

  it('refuses an empty window', () => {
    expect(nightLargeAmount.check!(nightLargeAmount.config.parse({ from: '01:00', to: '01:00', minAmountFen: 1 }))).toEqual([{ path: ['to'], message: expect.stringMatching(/must differ/) }]);
  });
});

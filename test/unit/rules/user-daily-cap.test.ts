/** user_daily_cap's state as quota calibration reads it. */
import { describe, expect, it } from 'vitest';
import { dayCountField, dayCounts, userDailyCap } from '../../../src/rules/user-daily-cap.ts';

describe('user_daily_cap', () => {
  it('names and reads the day counts, ignoring the other rules\' fields', () => {
    expect(dayCountField('2026-03-10')).toBe('2026-03-10#n');
    expect(dayCounts({ '2026-03-10': '5000', '2026-03-10#n': '2', '2026-03-11#n': '7', 'c:abc': '1 2', p: '2026-03-10' })).toEqual(
      new Map([
        ['2026-03-10', 2],
        ['2026-03-11', 7],
      ]),
    );
  });

  it('gives its script the cap and the count field suffix', () => {
    expect(userDailyCap.scriptConfig!(userDailyCap.config.parse({ capFen: 123 }), userDailyCap.config.parse(userDailyCap.defaults), { maxFutureSkewSeconds: 0 })).toEqual({ capFen: 123, countSuffix: '#n' });
  });
});

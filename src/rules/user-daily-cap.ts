/**
 * user_daily_cap: a user's charges of one local day, not declined, above the cap (seed: 单日 50,000 元). Kept state:
 * per local day, the fen and the count of its charges not declined (quota calibration reads the counts).
 */
import { z } from 'zod';
import { fen } from '../../config/fields.ts';
import { defineRule } from './rule.ts';

/**
 * Its state, in the user's rule-state hash (src/rules/rule-state.ts): "<YYYY-MM-DD>" → fen of that local day's
 * charges not declined, "<YYYY-MM-DD>#n" → their count (user-daily-cap.lua writes both).
 */
export const DAY_COUNT_SUFFIX = '#n';

export const userDailyCap = defineRule({
  name: 'user_daily_cap',
  configKey: 'userDailyCap',
  outcome: 'decline',
  config: z.strictObject({
    /** Most a user may charge (not declined) in one local day, fen, inclusive. @defaultValue 5000000 */
    capFen: fen,
  }),
  defaults: { capFen: 5_000_000 },
  firesWhen: (c) =>
    `the user's non-declined charges of the same local day evaluated before, plus this one, > ${c.capFen.toLocaleString('en-US')} fen (exactly ${(c.capFen / 100).toLocaleString('en-US', { minimumFractionDigits: 2 })} CNY is allowed)`,
  lua: new URL('./user-daily-cap.lua', import.meta.url),
  scriptConfig: (c) => ({ capFen: c.capFen, countSuffix: DAY_COUNT_SUFFIX }),
  state: [
    { field: '<YYYY-MM-DD>', value: "fen of that local day's charges not declined" },
    { field: `<YYYY-MM-DD>${DAY_COUNT_SUFFIX}`, value: 'their count (quota calibration reads it)' },
  ],
});


/** The field of a local day's charge count (what quota calibration reads). */
export function dayCountField(localDate: string): string {
  return localDate + DAY_COUNT_SUFFIX;
}

/** The charge count of every local day a rule-state hash holds (what quota calibration reads). */
export function dayCounts(hash: Record<string, string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const [field, value] of Object.entries(hash)) {
    if (field.length === 12 && field.endsWith(DAY_COUNT_SUFFIX)) counts.set(field.slice(0, 10), Number(value));
  }
  return counts;
}

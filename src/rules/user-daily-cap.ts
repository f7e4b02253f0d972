/**
 * user_daily_cap: a user's charges of one local day, not declined, above the cap (seed: 单日 50,000 元). Kept state:
 * per local day, the fen of its charges not declined.
 */
import { z } from 'zod';
import { fen } from '../../config/fields.ts';
import { defineRule } from './rule.ts';

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
  scriptConfig: (c) => ({ capFen: c.capFen }),
  state: [{ field: '<YYYY-MM-DD>', value: "fen of that local day's charges not declined" }],
});


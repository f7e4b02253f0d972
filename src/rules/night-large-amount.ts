/**
 * night_large_amount: a large amount in the local night window (seed: 23:00–02:00 大额). Stateless: decided before
 * the script call, from the charge's local time in the configured zone.
 */
import { z } from 'zod';
import { clockText, clockTime, cny, fen } from '../../config/fields.ts';
import { defineRule } from './rule.ts';

export const nightLargeAmount = defineRule({
  name: 'night_large_amount',
  configKey: 'nightLargeAmount',
  outcome: 'decline',
  config: z.strictObject({
    /** Start of the night window, inclusive. @defaultValue "23:00" */
    from: clockTime,
    /** End of the night window, exclusive; may wrap past midnight. @defaultValue "02:00" */
    to: clockTime,
    /** Amounts at or above this (fen) are declined at night. @defaultValue 500000 */
    minAmountFen: fen,
  }),
  defaults: { from: '23:00', to: '02:00', minAmountFen: 500_000 },
  firesWhen: (c) => `local time in [${clockText(c.from)}, ${clockText(c.to)}) and amount ≥ ${c.minAmountFen.toLocaleString('en-US')} fen (${(c.minAmountFen / 100).toLocaleString('en-US')} CNY)`,
  decide: (charge, c) => {
    const { secondOfDay: sod } = charge;
    const atNight = c.from <= c.to ? sod >= c.from && sod < c.to : sod >= c.from || sod < c.to;
    if (!atNight || charge.amount < c.minAmountFen) return null;
    return `${cny(charge.amount)} CNY at ${charge.localTime} local time, inside the night window ${clockText(c.from)}–${clockText(c.to)} (decline at ${cny(c.minAmountFen)} CNY or more)`;
  },
  check: (c) =>
    c.from === c.to ? [{ path: ['to'], message: 'must differ from "from": an empty night window would never fire (and a whole-day one is a plain amount cap)' }] : [],
});

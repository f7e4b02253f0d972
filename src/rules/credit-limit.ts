/**
 * credit_limit: a charge may spend only what is left of the user's credit (seed 000: 额度管理机制; seed 002: 检查分付额度).
 * Available = the effective quota at the charge's occurredAt (the base set by the opening or the latest calibration,
 * raised by a holiday uplift whose local dates contain it) minus what the user owes: the charges counted since the
 * account opened, less repayments and refunds, never below zero.
 *
 * Its state is the user's credit account (src/quota/credit-account.ts owns the fields), read in the same script
 * call that decides, so a charge and the account events of its user apply in production order.
 */
import { z } from 'zod';
import { defineRule } from './rule.ts';

export const creditLimit = defineRule({
  name: 'credit_limit',
  configKey: 'creditLimit',
  outcome: 'decline',
  config: z.strictObject({
    /**
     * Decline the charges of a user without a credit account open at their occurredAt (reason "no_credit_account");
     * otherwise the rule does not apply to them. @defaultValue false
     */
    requireAccount: z.boolean({ error: 'requireAccount must be true or false' }),
  }),
  defaults: { requireAccount: false },
  firesWhen: (c) =>
    "amount > the user's available credit: effective quota at `occurredAt` (base, raised by a holiday uplift in force then and at the producer's clock) − outstanding (charges not declined since the opening, less repayments and refunds); exactly the available amount is allowed; a charge dated before its user's account opened is declined" +
    (c.requireAccount ? '; a user without a credit account is declined (`no_credit_account`)' : '; a user without a credit account is not checked'),
  lua: new URL('./credit-limit.lua', import.meta.url),
  scriptConfig: (c, _started, env) => ({
    requireAccount: c.requireAccount ? 1 : 0,
    bandMax: { invited: env.calibration.bands.invited.maxFen, applied: env.calibration.bands.applied.maxFen },
    roundDownToFen: env.calibration.roundDownToFen,
    // Local dates compare as texts: [from, to) of each window, its percent and its name.
    uplifts: env.calibration.holidayUplifts.map((w) => [w.from, w.to, w.percent, w.name]),
  }),
  keys: (keys, shard) => ({ creditTotals: keys.creditTotals(shard) }),
  userKeys: (keys) => ({ account: (userId) => keys.account(userId) }),
});

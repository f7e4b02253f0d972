/**
 * The layout of a user's credit account (Keys.account, one hash per user, no expiry): the one owner of its fields.
 * Written by the opening (openAccount-3.lua), by calibration (applyCalibration-6.lua), by the charges the
 * credit_limit rule counts (src/rules/credit-limit.lua), and by repayments and refunds (src/quota/*.lua):
 *
 *   channel, quota (base, fen), openedAt (ms), openedAtIso, openEventId, openDate   set by the opening
 *   lastRun, lastRunAt (ms)            the latest calibration run that applied, and its instant R
 *   owed                               outstanding fen: counted charges less repayments and refunds, never < 0
 *   n:<YYYY-MM-DD>                     charges counted that local day (calibration's frequent use and idle)
 *   late                               charges counted after their period was calibrated (the next run counts them)
 *   seq                                bumped by every charge, repayment, refund and snapshot applied: a
 *                                      calibration applies only to the state it read
 */

/** Prefix of a local day's charge count. */
export const DAY_COUNT_PREFIX = 'n:';

export type Channel = 'invited' | 'applied';

/** What the rules and the tools read of an account. */
export interface CreditAccount {
  userId: string;
  channel: Channel;
  /** Base quota, fen. */
  quota: number;
  openedAtMs: number;
  /** Outstanding, fen. */
  owed: number;
  /** Date of the last run that calibrated this account, or null. */
  lastRunId: string | null;
  /** That run's instant R, or null. */
  lastRunAtMs: number | null;
  /** Local date → charges counted that day. */
  chargesByDate: Map<string, number>;
  /** Charges counted after their period was calibrated, not yet counted by a run. */
  lateCharges: number;
  seq: number;
}

export function parseCreditAccount(userId: string, h: Record<string, string> | null | undefined): CreditAccount | null {
  if (!h || h.quota === undefined) return null;
  const chargesByDate = new Map<string, number>();
  for (const [field, value] of Object.entries(h)) {
    if (field.startsWith(DAY_COUNT_PREFIX)) chargesByDate.set(field.slice(DAY_COUNT_PREFIX.length), Number(value));
  }
  return {
    userId,
    channel: h.channel as Channel,
    quota: Number(h.quota),
    openedAtMs: Number(h.openedAt),
    owed: Number(h.owed ?? 0),
    lastRunId: h.lastRun ?? null,
    lastRunAtMs: h.lastRunAt === undefined ? null : Number(h.lastRunAt),
    chargesByDate,
    lateCharges: Number(h.late ?? 0),
    seq: Number(h.seq ?? 0),
  };
}

/** What a charge may still spend: the effective quota less what is owed, never below zero. */
export function availableCredit(effectiveQuota: number, owed: number): number {
  return Math.max(0, effectiveQuota - owed);
}

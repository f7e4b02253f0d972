/**
 * The calibration rule itself, as a pure function of an account, its activity and the run instant: no Redis here,
 * so every factor can be read (and tested) in one place. All money is integer fen; percentages are integers.
 *
 * A run has a date D (a configured day of the month) and an instant R = 00:00 local on D. The account's period
 * is P = [previous run's R for this account, or its opening instant; R).
 */
import { DateTime } from 'luxon';
import type { RiskmonConfig } from '../config.ts';
import { cny } from '../../config/fields.ts';
import type { ZoneCalendar } from '../time/calendar.ts';
import { DAY_MS } from '../time/calendar.ts';
import type { Channel, CreditAccount } from './credit-account.ts';


export type { Channel };

/** A credit account as calibration reads it (src/quota/credit-account.ts owns the stored fields). */
export type Account = Pick<CreditAccount, 'userId' | 'channel' | 'quota' | 'openedAtMs' | 'lastRunId' | 'lastRunAtMs' | 'seq'>;

export class CalibrationDateError extends Error {
  override name = 'CalibrationDateError';
}

/**
 * An event that arrived after the run covering its time had calibrated the account is recorded with that run's id
 * (`lateFor`): the next run counts it, once, and says so on its audit record.
 */
export interface Repayment {
  eventId: string;
  paidAtMs: number;
  amount: number;
  onTime: boolean;
  /** What it paid down of the outstanding balance when applied, fen (0 when nothing was owed). */
  paidDown: number;
  lateFor: string | null;
}

export interface AssetSnapshot {
  eventId: string;
  atMs: number;
  balance: number;
  redeemed: number;
  lateFor: string | null;
}

export interface SocialSnapshot {
  eventId: string;
  atMs: number;
  friendsAdded: number;
  momentsBlocked: boolean;
  lateFor: string | null;
}

/** What the event stream left about one account; each list sorted by time (ties by eventId). */
export interface Activity {
  /** Local date "YYYY-MM-DD" → charges counted that day (not declined, from the opening on: credit_limit). */
  chargesByDate: ReadonlyMap<string, number>;
  /** Charges counted after the last run had calibrated their period. */
  lateCharges: number;
  repayments: readonly Repayment[];
  assets: readonly AssetSnapshot[];
  social: readonly SocialSnapshot[];
}

export interface CalibrationRun {
  /** The run id: its date D, "YYYY-MM-DD". */
  runId: string;
  /** R: 00:00 local on D, ms. */
  atMs: number;
  /** R − idle days (calendar days in the zone), ms, and its local date. */
  idleFromMs: number;
  idleFromDate: string;
}

export type FactorName =
  | 'overdue_repayment'
  | 'frequent_use'
  | 'wealth_balance'
  | 'new_friends'
  | 'moments_blocked'
  | 'idle'
  | 'on_time_repayment'
  | 'band_clamp';

export interface Factor {
  factor: FactorName;
  /** Percentage applied to the quota (overdue: the change, e.g. -30). */
  percent?: number;
  /** Amount added after the percentages, fen. */
  bonusFen?: number;
  detail: string;
}

/** Warnings a run records (label `warning` of riskmon_calibration_warnings_total); add new kinds here. */
export const WARNING_NAMES = ['asset_redemption', 'repayment_without_debt'] as const;
export type WarningName = (typeof WARNING_NAMES)[number];

export interface Warning {
  warning: WarningName;
  detail: string;
}

/** What a run does to one account's quota (label `change` of riskmon_calibration_accounts_total). */
export const QUOTA_CHANGES = ['up', 'down', 'unchanged'] as const;
export type QuotaChange = (typeof QUOTA_CHANGES)[number];

/** How a calibration run ends (label `result` of riskmon_calibration_runs_total). */
export const CALIBRATION_RUN_RESULTS = ['completed', 'refused', 'failed'] as const;

export type CalibrationOutcome =
  | { kind: 'calibrated'; before: number; after: number; change: QuotaChange; factors: Factor[]; warnings: Warning[]; late: Late; periodStartMs: number }
  /** Already calibrated by this run. */
  | { kind: 'skipped' }
  /** Calibrated by a later run already: a run never goes back in time. */
  | { kind: 'refused'; lastRunId: string }
  /** Opened at or after R: not part of this run. */
  | { kind: 'excluded' };

/** What a run counted that arrived after the previous run had calibrated its period. */
export interface Late {
  charges: number;
  /** eventIds of late repayments and snapshots. */
  events: string[];
}

/** Exact integer division rounding down, for non-negative integers. */
function floorDiv(a: number, b: number): number {
  return (a - (a % b)) / b;
}

export class Calibrator {
  private readonly c: RiskmonConfig['calibration'];
  private readonly uplifts: { name: string; fromMs: number; toMs: number; percent: number }[];

  constructor(
    config: RiskmonConfig,
    private readonly calendar: ZoneCalendar,
  ) {
    this.c = config.calibration;
    this.uplifts = this.c.holidayUplifts.map((w) => ({
      name: w.name,
      fromMs: calendar.startOfDay(w.from),
      toMs: calendar.startOfDay(w.to),
      percent: w.percent,
    }));
  }

  /** The cron pattern of the scheduled runs: 00:00 on each run day. */
  get cron(): string {
    return `0 0 ${this.c.runDays.join(',')} * *`;
  }

  /** Validates a run date D and derives its instants; throws CalibrationDateError with a clear reason. */
  run(date: string): CalibrationRun {
    const dt = /^\d{4}-\d{2}-\d{2}$/.test(date) ? DateTime.fromISO(date, { zone: this.calendar.zone }) : null;
    if (!dt || !dt.isValid) throw new CalibrationDateError(`run date must be a calendar date YYYY-MM-DD, got ${JSON.stringify(date)}`);
    if (!this.c.runDays.includes(dt.day)) {
      throw new CalibrationDateError(`runs happen on day ${this.c.runDays.join(' or ')} of a month; ${date} is not one`);
    }
    const at = dt.startOf('day');
    const idleFrom = at.minus({ days: this.c.idle.days });
    return { runId: date, atMs: at.toMillis(), idleFromMs: idleFrom.toMillis(), idleFromDate: idleFrom.toISODate()! };
  }

  /** The run date D of a scheduled instant (the scheduler fires at 00:00 local on D). */
  runDateAt(ms: number): string {
    return this.calendar.local(ms).date;
  }

  calibrate(account: Account, activity: Activity, run: CalibrationRun): CalibrationOutcome {
    const c = this.c;
    const R = run.atMs;
    if (account.openedAtMs >= R) return { kind: 'excluded' };
    if (account.lastRunId !== null) {
      if (account.lastRunId === run.runId) return { kind: 'skipped' };
      if (account.lastRunId > run.runId) return { kind: 'refused', lastRunId: account.lastRunId };
    }
    const firstPeriod = account.lastRunAtMs === null;
    const S = firstPeriod ? account.openedAtMs : account.lastRunAtMs!;
    const inP = (t: number) => t >= S && t < R;
    const periodMs = R - S;
    const periodDays = (periodMs / DAY_MS).toFixed(2);

    // Charges: per-local-day counts of the charges credit_limit counted, from the opening instant on (so the first
    // period, which starts mid-day, holds none from before it), plus those that came after the previous run.
    const startDate = this.calendar.local(S).date;
    let charges = activity.lateCharges;
    let idleCharges = 0;
    for (const [date, n] of activity.chargesByDate) {
      if (date >= run.runId) continue;
      if (date >= startDate) charges += n;
      if (date >= run.idleFromDate) idleCharges += n;
    }

    // An event counts in the period containing its time, or, when it came after the previous run had calibrated
    // that period, in this one (once: it is late for that run only). Nothing from before the opening counts.
    const counts = (atMs: number, lateFor: string | null) =>
      atMs >= account.openedAtMs && (inP(atMs) || (lateFor !== null && lateFor === account.lastRunId));
    const late: Late = { charges: activity.lateCharges, events: [] };
    const noteLate = (e: { eventId: string; lateFor: string | null }) => {
      if (e.lateFor !== null && e.lateFor === account.lastRunId) late.events.push(e.eventId);
    };

    // A repayment counts only for what it paid down: one made when nothing was owed is no repayment of credit.
    const inPeriod = activity.repayments.filter((r) => counts(r.paidAtMs, r.lateFor));
    const repaid = inPeriod.filter((r) => r.paidDown > 0);
    const paidNothing = inPeriod.length - repaid.length;
    repaid.forEach(noteLate);
    const overdue = repaid.filter((r) => !r.onTime);
    const onTimeRepayments = repaid.filter((r) => r.onTime);
    const onTime = onTimeRepayments.length;
    const assets = activity.assets.filter((a) => a.atMs >= account.openedAtMs);
    const social = activity.social.filter((x) => x.atMs >= account.openedAtMs);
    const latestAsset = assets.filter((a) => a.atMs < R).at(-1);
    const latestSocial = social.filter((x) => x.atMs < R).at(-1);
    const socialInP = social.filter((x) => counts(x.atMs, x.lateFor));
    socialInP.forEach(noteLate);
    const friendsAdded = socialInP.reduce((sum, x) => sum + x.friendsAdded, 0);

    const warnings: Warning[] = [];
    const redemptions = assets.filter((a) => counts(a.atMs, a.lateFor) && a.redeemed * 100 > c.redemptionWarningPercent * (a.balance + a.redeemed));
    redemptions.forEach(noteLate);
    if (redemptions.length > 0) {
      const worst = redemptions.reduce((w, a) => (a.redeemed * (w.balance + w.redeemed) > w.redeemed * (a.balance + a.redeemed) ? a : w));
      warnings.push({
        warning: 'asset_redemption',
        detail:
          `${redemptions.length} asset snapshot(s) in the period redeemed more than ${c.redemptionWarningPercent}% of the position ` +
          `(largest: ${cny(worst.redeemed)} of ${cny(worst.balance + worst.redeemed)} CNY, event ${worst.eventId})`,
      });
    }

    const before = account.quota;
    const factors: Factor[] = [];
    let after: number;
    if (overdue.length > 0) {
      factors.push({
        factor: 'overdue_repayment',
        percent: c.overdueKeepPercent - 100,
        detail: `${overdue.length} repayment(s) paid after their due date in the period (${overdue.map((r) => r.eventId).join(', ')}); no other factor applies`,
      });
      after = this.roundDown(floorDiv(before * c.overdueKeepPercent, 100));
    } else {
      if (periodMs >= c.frequentUse.minPeriodDays * DAY_MS && charges * DAY_MS >= c.frequentUse.minChargesPerDay * periodMs) {
        factors.push({
          factor: 'frequent_use',
          percent: c.frequentUse.percent,
          detail: `${charges} charges in ${periodDays} days (at least ${c.frequentUse.minChargesPerDay} a day)`,
        });
      }
      if (latestAsset && latestAsset.balance > c.wealthBalance.aboveFen) {
        factors.push({
          factor: 'wealth_balance',
          percent: c.wealthBalance.percent,
          detail: `latest asset snapshot (event ${latestAsset.eventId}) holds ${cny(latestAsset.balance)} CNY, more than ${cny(c.wealthBalance.aboveFen)} CNY`,
        });
      }
      if (friendsAdded >= c.newFriends.minFriendsAdded) {
        factors.push({
          factor: 'new_friends',
          percent: c.newFriends.percent,
          detail: `${friendsAdded} friends added in the period (at least ${c.newFriends.minFriendsAdded})`,
        });
      }
      if (latestSocial?.momentsBlocked) {
        factors.push({
          factor: 'moments_blocked',
          percent: c.momentsBlocked.percent,
          detail: `latest social snapshot (event ${latestSocial.eventId}) has Moments blocked`,
        });
      }
      if (account.openedAtMs <= run.idleFromMs && idleCharges === 0) {
        factors.push({
          factor: 'idle',
          percent: c.idle.percent,
          detail: `no charge in the ${c.idle.days} days before the run (since ${run.idleFromDate})`,
        });
      }
      const percent = factors.reduce((sum, f) => sum + (f.percent ?? 0), 0);
      // Each on-time repayment adds the bonus, but no more than it paid down: 1-fen repayments earn 1 fen each.
      const earned = onTimeRepayments.reduce((sum, r) => sum + Math.min(c.onTimeRepayment.bonusFen, r.paidDown), 0);
      const bonus = Math.min(earned, c.onTimeRepayment.maxBonusFenPerRun);
      if (onTime > 0) {
        const small = onTimeRepayments.filter((r) => r.paidDown < c.onTimeRepayment.bonusFen).length;
        factors.push({
          factor: 'on_time_repayment',
          bonusFen: bonus,
          detail:
            `${onTime} repayment(s) on time × ${cny(c.onTimeRepayment.bonusFen)} CNY` +
            (small > 0 ? `, ${small} of them capped at what they paid down` : '') +
            ` (at most ${cny(c.onTimeRepayment.maxBonusFenPerRun)} CNY a run)`,
        });
      }
      after = this.roundDown(floorDiv(before * Math.max(0, 100 + percent), 100)) + bonus;
    }

    const band = c.bands[account.channel];
    if (after < band.minFen || after > band.maxFen) {
      const clamped = Math.min(band.maxFen, Math.max(band.minFen, after));
      factors.push({
        factor: 'band_clamp',
        detail: `${cny(after)} CNY clamped to the ${account.channel} band ${cny(band.minFen)}–${cny(band.maxFen)} CNY`,
      });
      after = clamped;
    }
    const change: QuotaChange = after > before ? 'up' : after < before ? 'down' : 'unchanged';
    if (paidNothing > 0) {
      warnings.push({ warning: 'repayment_without_debt', detail: `${paidNothing} repayment(s) in the period paid down nothing (nothing was owed): not counted` });
    }
    return { kind: 'calibrated', before, after, change, factors, warnings, late, periodStartMs: S };
  }

  /** The quota in force at an instant: the base, raised by a holiday uplift window containing it (within the band). */
  effectiveQuota(channel: Channel, base: number, atMs: number): number {
    const percent = this.uplifts.filter((w) => atMs >= w.fromMs && atMs < w.toMs).reduce((max, w) => Math.max(max, w.percent), 0);
    if (percent === 0) return base;
    const raised = this.roundDown(floorDiv(base * (100 + percent), 100));
    return Math.max(base, Math.min(raised, this.c.bands[channel].maxFen));
  }

  private roundDown(fen: number): number {
    return fen - (fen % this.c.roundDownToFen);
  }
}

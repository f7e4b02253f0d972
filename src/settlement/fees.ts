/**
 * Merchant fees of Fenfu (seed 002, 费率结构与结算机制): tiered by the merchant's Fenfu volume in the calendar month
 * before the settlement date, in integer fen and basis points throughout. Per transaction the base fee (amount ×
 * the effective base rate) and the technical service fee (amount × the tier's technical rate) are each rounded half
 * up to a whole fen; net = amount − both. A merchant's negotiated discount lowers the base rate, never below its
 * tier's floor. A reversal (a refund of a paid charge) gives back the gross and fees of the refunded part: the same
 * computation on its (positive) amount, negated.
 */
import type { RiskmonConfig } from '../config.ts';

export type FeeSchedule = RiskmonConfig['settlement']['fees'];
export type FeeTier = FeeSchedule['tiers'][number];

export interface TransactionFees {
  /** 1-based, in the schedule's order. */
  tier: number;
  /** The base rate applied, basis points: the tier's less the merchant's discount, not below the floor. */
  baseBp: number;
  techBp: number;
  baseFeeFen: number;
  techFeeFen: number;
  netFen: number;
}

/** The tier (1-based) of a merchant whose volume in the month before was `volumeFen`. */
export function tierOf(volumeFen: number, schedule: FeeSchedule): number {
  const i = schedule.tiers.findIndex((t) => t.belowFen === null || volumeFen < t.belowFen);
  return i + 1;
}

/** `amountFen` × `bp` / 10,000, rounded half up to a whole fen (amountFen ≥ 0). */
export function feeOf(amountFen: number, bp: number): number {
  // Integers only: amount × bp stays below 2^53 for any amount the contract allows.
  return Math.floor((amountFen * bp + 5_000) / 10_000);
}

/** The fees of one transaction (a reversal: pass its refunded amount as negative). */
export function feesFor(amountFen: number, tier: number, merchantId: string, schedule: FeeSchedule): TransactionFees {
  const t = schedule.tiers[tier - 1]!;
  const discount = schedule.merchantDiscountsBp[merchantId] ?? 0;
  const baseBp = Math.max(t.floorBp, t.baseBp - discount);
  const sign = amountFen < 0 ? -1 : 1;
  const gross = Math.abs(amountFen);
  const baseFeeFen = sign * feeOf(gross, baseBp);
  const techFeeFen = sign * feeOf(gross, t.techBp);
  return { tier, baseBp, techBp: t.techBp, baseFeeFen, techFeeFen, netFen: amountFen - baseFeeFen - techFeeFen };
}

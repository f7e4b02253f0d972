/**
 * An in-memory reference model of the three charge rules and of settlement, written from the rule text of the
 * risk-pipeline issue (not from the Lua script), with luxon for the calendar (not src/time/calendar.ts), so that a
 * disagreement with the service points at one of the two. Feed it events in the order the service evaluated them.
 *
 * It also models the state the service keeps (day totals, pruned card windows, the settlement due set and the
 * Fenfu ledger), so tests can compare what Redis holds with what the input implies.
 */
import { DateTime } from 'luxon';
import type { RiskmonConfig } from '../../src/config.ts';
import { PRUNE_EVERY_DAYS } from '../../src/rules/charge-rules.ts';

export interface ModelCharge {
  eventId: string;
  userId: string;
  merchantId: string;
  cardId: string;
  amount: number;
  occurredAt: string;
}

export type ModelOutcome = 'approve' | 'review' | 'decline';

export interface ModelDecision {
  eventId: string;
  userId: string;
  merchantId: string;
  cardId: string;
  amount: number;
  occurredAtMs: number;
  localDate: string;
  outcome: ModelOutcome;
  rules: string[];
  cardCount: number;
  dayTotalBefore: number;
  /** Epoch ms, or null when declined. */
  settleAtMs: number | null;
}

export interface ModelParams {
  zone: string;
  burstWindowMs: number;
  burstMinCount: number;
  lateToleranceMs: number;
  /** Seconds after local midnight. */
  nightFrom: number;
  nightTo: number;
  nightMinFen: number;
  capFen: number;
  settleTime: number;
  delayDays: number;
  holdHours: number;
  dayTotalsDays: number;
}

export function modelParams(config: RiskmonConfig): ModelParams {
  const { rules, settlement, retention } = config;
  return {
    zone: config.timezone,
    burstWindowMs: rules.sameCardBurst.windowSeconds * 1000,
    burstMinCount: rules.sameCardBurst.minCount,
    lateToleranceMs: rules.sameCardBurst.lateToleranceSeconds * 1000,
    nightFrom: rules.nightLargeAmount.from,
    nightTo: rules.nightLargeAmount.to,
    nightMinFen: rules.nightLargeAmount.minAmountFen,
    capFen: rules.userDailyCap.capFen,
    settleTime: settlement.settleTime,
    delayDays: settlement.delayDays,
    holdHours: settlement.holdHours,
    dayTotalsDays: retention.dayTotalsDays,
  };
}

export class ReferenceModel {
  /** Every decision, by eventId. */
  readonly decisions = new Map<string, ModelDecision>();
  /** Decisions in evaluation order. */
  readonly order: ModelDecision[] = [];
  /** Every charge ever evaluated on a card (user + card), for the rule as written. */
  private readonly cardHistory = new Map<string, number[]>();
  /** user + local date → fen of the charges not declined (the rule as written; never pruned). */
  private readonly daySums = new Map<string, number>();
  /** What the service keeps of a card window: eventId → occurredAt, pruned as it prunes. */
  private readonly cardKept = new Map<string, Map<string, number>>();
  /** Per user: local date of the last prune of the service's state. */
  private readonly prunedOn = new Map<string, string>();
  /** Per user: local date → fen not declined and count, as the service keeps them (old days pruned). */
  private readonly dayTotals = new Map<string, Map<string, { fen: number; n: number }>>();

  constructor(readonly params: ModelParams) {}

  static fromConfig(config: RiskmonConfig): ReferenceModel {
    return new ReferenceModel(modelParams(config));
  }

  /** Applies one valid charge; an eventId seen before changes nothing and returns the first decision. */
  apply(event: ModelCharge): { decision: ModelDecision; isNew: boolean } {
    const seen = this.decisions.get(event.eventId);
    if (seen) return { decision: seen, isNew: false };
    const p = this.params;
    const t = DateTime.fromISO(event.occurredAt, { setZone: true }).toMillis();
    if (!Number.isFinite(t)) throw new Error(`model: bad occurredAt ${event.occurredAt}`);
    const local = DateTime.fromMillis(t, { zone: p.zone });
    const localDate = local.toISODate()!;
    const rules: string[] = [];

    // 1. same_card_burst: charges on this card with occurredAt in (t − window, t], this one included, any outcome.
    const cardKey = `${event.userId}\u0000${event.cardId}`;
    const history = this.cardHistory.get(cardKey) ?? [];
    history.push(t);
    this.cardHistory.set(cardKey, history);
    const cardCount = history.filter((x) => x > t - p.burstWindowMs && x <= t).length;
    if (cardCount >= p.burstMinCount) rules.push('same_card_burst');

    // 2. night_large_amount: local time in [from, to), which may wrap past midnight, and a large amount.
    const sod = local.hour * 3600 + local.minute * 60 + local.second;
    const atNight = p.nightFrom <= p.nightTo ? sod >= p.nightFrom && sod < p.nightTo : sod >= p.nightFrom || sod < p.nightTo;
    const nightDecline = atNight && event.amount >= p.nightMinFen;
    if (nightDecline) rules.push('night_large_amount');

    // 3. user_daily_cap: the day's charges not declined, evaluated before this one, plus this one, over the cap.
    const dayKey = `${event.userId}\u0000${localDate}`;
    const before = this.daySums.get(dayKey) ?? 0;
    const capDecline = before + event.amount > p.capFen;
    if (capDecline) rules.push('user_daily_cap');

    const outcome: ModelOutcome = nightDecline || capDecline ? 'decline' : rules.includes('same_card_burst') ? 'review' : 'approve';
    let settleAtMs: number | null = null;
    if (outcome !== 'decline') {
      const h = Math.floor(p.settleTime / 3600);
      const m = Math.floor((p.settleTime % 3600) / 60);
      const tPlusN = local.startOf('day').plus({ days: p.delayDays }).set({ hour: h, minute: m, second: p.settleTime % 60, millisecond: 0 });
      settleAtMs = tPlusN.toMillis() + (outcome === 'review' ? p.holdHours * 3_600_000 : 0);
    }

    if (outcome !== 'decline') this.daySums.set(dayKey, before + event.amount);
    const decision: ModelDecision = {
      eventId: event.eventId,
      userId: event.userId,
      merchantId: event.merchantId,
      cardId: event.cardId,
      amount: event.amount,
      occurredAtMs: t,
      localDate,
      outcome,
      rules,
      cardCount,
      dayTotalBefore: before,
      settleAtMs,
    };
    this.decisions.set(event.eventId, decision);
    this.order.push(decision);
    this.keepState(decision, cardKey);
    return { decision, isNew: true };
  }

  /** The service's retention of card windows and day totals, which decides what Redis should hold. */
  private keepState(d: ModelDecision, cardKey: string): void {
    const p = this.params;
    const keepFrom = d.occurredAtMs - (p.burstWindowMs + p.lateToleranceMs);
    const days = this.dayTotals.get(d.userId) ?? new Map<string, { fen: number; n: number }>();
    const prunedOn = this.prunedOn.get(d.userId);
    const localMidnight = DateTime.fromISO(d.localDate, { zone: p.zone });
    if (prunedOn === undefined || prunedOn <= localMidnight.minus({ days: PRUNE_EVERY_DAYS }).toISODate()!) {
      // A charge a week or more after the user's last prune, whatever its outcome, prunes the user's state:
      // days past retention and card windows with nothing left in the retention.
      // The script records the charge's date, or today's for a charge dated in the future.
      const today = DateTime.now().setZone(p.zone).toISODate()!;
      this.prunedOn.set(d.userId, d.localDate < today ? d.localDate : today);
      const oldest = localMidnight.minus({ days: p.dayTotalsDays }).toISODate()!;
      for (const date of [...days.keys()]) if (date < oldest) days.delete(date);
      for (const [key, kept] of this.cardKept) {
        if (key.split('\u0000')[0] === d.userId && Math.max(...kept.values()) < keepFrom) this.cardKept.delete(key);
      }
    }
    const kept = this.cardKept.get(cardKey) ?? new Map<string, number>();
    for (const [id, at] of kept) if (at < keepFrom) kept.delete(id);
    kept.set(d.eventId, d.occurredAtMs);
    this.cardKept.set(cardKey, kept);
    this.dayTotals.set(d.userId, days);

    if (d.outcome === 'decline') return;
    const day = days.get(d.localDate) ?? { fen: 0, n: 0 };
    day.fen += d.amount;
    day.n += 1;
    days.set(d.localDate, day);
  }

  users(): string[] {
    return [...new Set(this.order.map((d) => d.userId))];
  }

  /** The day-totals hash the service should hold for a user: "<date>" → fen, "<date>#n" → count. */
  dayTotalsHash(userId: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [date, { fen, n }] of this.dayTotals.get(userId) ?? []) {
      out[date] = String(fen);
      out[`${date}#n`] = String(n);
    }
    return out;
  }

  /** The cards of a user with the charge times (ms, in evaluation order) the service should keep in their windows. */
  cardWindows(userId: string): { cardId: string; times: number[] }[] {
    const out: { cardId: string; times: number[] }[] = [];
    for (const [key, kept] of this.cardKept) {
      const [user, cardId] = key.split('\u0000') as [string, string];
      if (user === userId) out.push({ cardId, times: [...kept.values()] });
    }
    return out;
  }

  /** eventId → settleAt ms of every decision that settles (approve and review). */
  settlements(): Map<string, number> {
    const out = new Map<string, number>();
    for (const d of this.order) if (d.settleAtMs !== null) out.set(d.eventId, d.settleAtMs);
    return out;
  }

  /** What the Fenfu ledger should hold once everything due is released: date → merchant → count and fen. */
  ledger(): Map<string, Map<string, { count: number; amount: number }>> {
    const out = new Map<string, Map<string, { count: number; amount: number }>>();
    for (const d of this.order) {
      if (d.settleAtMs === null) continue;
      const date = DateTime.fromMillis(d.settleAtMs, { zone: this.params.zone }).toISODate()!;
      const merchants = out.get(date) ?? new Map<string, { count: number; amount: number }>();
      const m = merchants.get(d.merchantId) ?? { count: 0, amount: 0 };
      m.count++;
      m.amount += d.amount;
      merchants.set(d.merchantId, m);
      out.set(date, merchants);
    }
    return out;
  }
}

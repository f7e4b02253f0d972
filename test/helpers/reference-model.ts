/**
 * An in-memory reference model of contract v1.1 (issue 11) for charges: event time against a clock, eventId claims,
 * the charge rules (not the merchant admission list), credit accounts (openings, repayments, refunds and
 * credit_limit), settlement never before the clock, and the state the service keeps. Written from the rule
 * text of the issues (not from the Lua script), with luxon for the calendar (not src/time/calendar.ts), so that a
 * disagreement with the service points at one of the two. Feed it events in production order, each with the clock
 * it was accepted with (the producer's stamp); without one, the replay clock (the largest occurredAt accepted so far).
 *
 * Two layers:
 * - The rules as written, over the full history: "charges on the card with occurredAt in (t − window, t], every
 *   outcome counted", the day's non-declined total (never forgotten). The decision follows these wherever the
 *   service guarantees them.
 * - The state the service keeps (day totals, card windows trimmed and thinned, the prune date), so tests can compare
 *   Redis with the model, and so the model can say what the service decides where the rule as written is not
 *   promised.
 *
 * What the service promises for the burst rule (and so where the model decides by the full history): a charge at
 * most lateTolerance behind its card's newest charge, and at most lateTolerance behind the clock of the user's last
 * prune, sees its whole window. The first half is the "a card's entries are trimmed relative to its newest
 * entry" (entries older than newest − (window + tolerance) go); the second is the prune: a card window whose newest
 * time is older than clock − (window + tolerance) is dropped, so a charge more than the tolerance behind that clock
 * may find its card empty although its window held charges. Beyond either bound the rule as written is not
 * promised, and the model decides by what it keeps, exactly as the service should (`withinGuarantee` says which);
 * the generators produce both kinds. Thinning (above `thinAbove` entries: per burst-window-long bucket the
 * minCount − 1 oldest and newest times) is modelled too: the observed count may drop, the outcome must not.
 */
import { DateTime } from 'luxon';
import type { RiskmonConfig } from '../../src/config.ts';

/** A user's rule state is pruned at most once a week (the "weekly prune"). */
const PRUNE_EVERY_DAYS = 7;

export interface ModelCharge {
  eventId: string;
  userId: string;
  merchantId: string;
  cardId: string;
  amount: number;
  currency?: string;
  occurredAt: string;
}

export type ModelOutcome = 'approve' | 'review' | 'decline';

export interface ModelDecision {
  eventId: string;
  userId: string;
  merchantId: string;
  /** The card after normalisation. */
  cardId: string;
  amount: number;
  occurredAtMs: number;
  /** The clock the charge was decided with. */
  clockMs: number;
  localDate: string;
  outcome: ModelOutcome;
  rules: string[];
  /** What the service observes: charges in the burst window among those its card window keeps, this one included. */
  cardCount: number;
  /** The rule as written: every charge on the card ever decided in the burst window, this one included. */
  fullCardCount: number;
  /** The burst rule as written is promised for this charge (see the header); when not, the kept state decides. */
  withinGuarantee: boolean;
  /** The card window had been thinned before this charge: cardCount may be below fullCardCount. */
  thinned: boolean;
  dayTotalBefore: number;
  /** credit_limit: the available credit before this charge, or null when the user had no account open then. */
  creditAvailable: number | null;
  /** Epoch ms, or null when declined. */
  settleAtMs: number | null;
}

/** A credit-account event of the model: an opening, a repayment (its amount and paidAt), a refund of a charge. */
export type ModelAccountEvent =
  | { type: 'account_opened'; eventId: string; userId: string; channel: 'invited' | 'applied'; quota: number; occurredAt: string }
  | { type: 'repayment'; eventId: string; userId: string; amount: number; dueAt: string; paidAt: string; occurredAt: string }
  | { type: 'refund'; eventId: string; userId: string; chargeId: string; amount: number; occurredAt: string };

interface ModelAccount {
  channel: 'invited' | 'applied';
  quota: number;
  openedAtMs: number;
  owed: number;
}

export type ModelResult =
  | { kind: 'new'; decision: ModelDecision; clockMs: number }
  | { kind: 'duplicate'; decision: ModelDecision; clockMs: number }
  /** Refused: nothing changes (no claim, no clock, no state). */
  | { kind: 'refused'; reason: 'event_time' | 'id_conflict'; fields: string[]; clockMs: number };

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
  /** A review charge above this waits past its deadline for a person (its case never auto-releases). */
  fourEyesAboveFen: number;
  dayTotalsDays: number;
  maxFutureSkewMs: number;
  maxAgeMs: number;
  /** A card window holding more times than this is thinned. */
  thinAbove: number;
  /** credit_limit: decline charges of users without an account open at their occurredAt. */
  requireAccount: boolean;
  /** Quota bands per opening channel, fen. */
  bands: Record<'invited' | 'applied', { minFen: number; maxFen: number }>;
  roundDownToFen: number;
  /** Holiday uplifts: local dates [from, to), percent. */
  uplifts: { name: string; from: string; to: string; percent: number }[];
}

export function modelParams(config: RiskmonConfig): ModelParams {
  const { rules, settlement, retention, events } = config;
  const burst = rules.sameCardBurst;
  return {
    zone: config.timezone,
    burstWindowMs: burst.windowSeconds * 1000,
    burstMinCount: burst.minCount,
    lateToleranceMs: burst.lateToleranceSeconds * 1000,
    nightFrom: rules.nightLargeAmount.from,
    nightTo: rules.nightLargeAmount.to,
    nightMinFen: rules.nightLargeAmount.minAmountFen,
    capFen: rules.userDailyCap.capFen,
    settleTime: settlement.settleTime,
    delayDays: settlement.delayDays,
    holdHours: settlement.holdHours,
    fourEyesAboveFen: config.cases.fourEyesAboveFen,
    dayTotalsDays: retention.dayTotalsDays,
    maxFutureSkewMs: events.maxFutureSkewSeconds * 1000,
    maxAgeMs: events.maxAgeDays * 86_400_000,
    // Two thinned ends of minCount − 1 per bucket, over the buckets a retention (window + tolerance + skew) touches.
    thinAbove:
      2 * (burst.minCount - 1) * (Math.ceil((burst.windowSeconds + burst.lateToleranceSeconds + events.maxFutureSkewSeconds) / burst.windowSeconds) + 1),
    requireAccount: rules.creditLimit.requireAccount,
    bands: config.calibration.bands,
    roundDownToFen: config.calibration.roundDownToFen,
    uplifts: config.calibration.holidayUplifts.map((w) => ({ ...w })),
  };
}

/** One card however written (contract v1.1): NFKC, then the digits alone when only digits and separators remain. */
export function modelCard(cardId: string): string {
  const n = cardId.normalize('NFKC');
  return /^[\d\s\-.\u200b-\u200d\u2060\ufeff]+$/u.test(n) && /\d/.test(n) ? n.replace(/\D/g, '') : n;
}

const SEP = '\u0000';

export class ReferenceModel {
  /** Every decision, by eventId. */
  readonly decisions = new Map<string, ModelDecision>();
  /** Decisions in evaluation order. */
  readonly order: ModelDecision[] = [];
  /** eventId → canonical content of the event that claimed it. */
  private readonly claims = new Map<string, string>();
  /** The replay clock: largest occurredAt of the events accepted so far. */
  private replayClock = -Infinity;
  /** Every charge ever decided on a card (user + card), for the rule as written. */
  private readonly cardHistory = new Map<string, number[]>();
  /** user + local date → fen of the charges not declined (the rule as written; never pruned). */
  private readonly daySums = new Map<string, number>();
  /** What the service keeps of a card window: times in the order it stores them. */
  private readonly cardKept = new Map<string, number[]>();
  /** Cards whose kept window was ever thinned. */
  private readonly thinnedCards = new Set<string>();
  /** Per user: the clock's local date at the last prune of the service's state. */
  private readonly prunedOn = new Map<string, string>();
  /** Per user: the largest clock a prune ran with (card windows idle before it − retention were dropped). */
  private readonly pruneClock = new Map<string, number>();
  /** Per user: local date → fen not declined and count, as the service keeps them (old days pruned). */
  private readonly dayTotals = new Map<string, Map<string, { fen: number; n: number }>>();
  /** Credit accounts by user. */
  private readonly accounts = new Map<string, ModelAccount>();
  /** Account events applied, by eventId (a repeat changes nothing). */
  private readonly accountEvents = new Set<string>();
  /** chargeId → fen refunded so far. */
  private readonly refunded = new Map<string, number>();

  constructor(readonly params: ModelParams) {}

  static fromConfig(config: RiskmonConfig): ReferenceModel {
    return new ReferenceModel(modelParams(config));
  }

  /**
   * Applies one charge the caller knows the service accepted (the decision stream's order, a fixture that should
   * pass): the decision and whether it is new. A charge the model refuses throws, naming why: the two disagree.
   */
  apply(event: ModelCharge, clockMs?: number): { decision: ModelDecision; isNew: boolean } {
    const r = this.applyAt(event, clockMs);
    if (r.kind === 'refused') throw new Error(`model: ${event.eventId} is refused (${r.reason} ${r.fields.join(', ')}) at clock ${new Date(r.clockMs).toISOString()}`);
    return { decision: r.decision, isNew: r.kind === 'new' };
  }

  /**
   * Applies one valid charge accepted (or not) at `clockMs`: refused for its time or for an eventId claimed with
   * other content (nothing changes), a duplicate (the first decision), or a new decision.
   */
  applyAt(event: ModelCharge, clockMs?: number): ModelResult {
    const p = this.params;
    const t = DateTime.fromISO(event.occurredAt, { setZone: true }).toMillis();
    if (!Number.isFinite(t)) throw new Error(`model: bad occurredAt ${event.occurredAt}`);
    const clock = clockMs ?? Math.max(this.replayClock, t);

    // Time: [clock − maxAge, clock + maxFutureSkew], checked before the claim (a refused event claims nothing).
    if (t > clock + p.maxFutureSkewMs || t < clock - p.maxAgeMs) return { kind: 'refused', reason: 'event_time', fields: [], clockMs: clock };

    // Idempotency: the eventId's first accepted content owns it.
    const card = modelCard(event.cardId);
    const content = [event.userId, event.merchantId, card, event.amount, event.currency ?? 'CNY', t];
    const claimed = this.claims.get(event.eventId);
    if (claimed !== undefined) {
      const first = JSON.parse(claimed) as unknown[];
      const names = ['userId', 'merchantId', 'card', 'amount', 'currency', 'occurredAt'];
      const fields = names.filter((_, i) => JSON.stringify(first[i]) !== JSON.stringify(content[i]));
      if (fields.length > 0) return { kind: 'refused', reason: 'id_conflict', fields, clockMs: clock };
    } else {
      this.claims.set(event.eventId, JSON.stringify(content));
    }
    this.replayClock = Math.max(this.replayClock, t);
    const seen = this.decisions.get(event.eventId);
    if (seen) return { kind: 'duplicate', decision: seen, clockMs: clock };
    return { kind: 'new', decision: this.decide(event, card, t, clock), clockMs: clock };
  }

  private decide(event: ModelCharge, card: string, t: number, clock: number): ModelDecision {
    const p = this.params;
    const local = DateTime.fromMillis(t, { zone: p.zone });
    const localDate = local.toISODate()!;
    const clockDate = DateTime.fromMillis(clock, { zone: p.zone }).toISODate()!;
    const rules: string[] = [];

    // 1. same_card_burst: charges on this card with occurredAt in (t − window, t], this one included, any outcome.
    const cardKey = `${event.userId}${SEP}${card}`;
    const history = this.cardHistory.get(cardKey) ?? [];
    const inWindow = (x: number) => x > t - p.burstWindowMs && x <= t;
    const fullCardCount = 1 + history.filter(inWindow).length;
    const newestOfCard = history.length ? Math.max(...history) : t;
    // A card's newest charge may lead the clock by the skew: the promise is lateTolerance behind the clock.
    const late = p.lateToleranceMs + p.maxFutureSkewMs;
    const withinGuarantee = t >= newestOfCard - late && t >= (this.pruneClock.get(event.userId) ?? -Infinity) - late;
    history.push(t);
    this.cardHistory.set(cardKey, history);
    // What the service keeps: the times within window + tolerance + skew of the card's newest (this one included).
    const stored = this.cardKept.get(cardKey) ?? [];
    const keepFrom = Math.max(t, ...stored) - (p.burstWindowMs + p.lateToleranceMs + p.maxFutureSkewMs);
    const keptBefore = stored.filter((x) => x >= keepFrom);
    const cardCount = 1 + keptBefore.filter(inWindow).length;
    const thinned = this.thinnedCards.has(cardKey);
    // In time order, as the service keeps it.
    let window = (t >= keepFrom ? [...keptBefore, t] : keptBefore).sort((a, b) => a - b);
    if (window.length > p.thinAbove) {
      window = this.thin(window);
      this.thinnedCards.add(cardKey);
    }
    // Older than the service keeps behind the card's newest charge: held for review, its burst cannot be counted.
    const tooLate = stored.length > 0 && t < keepFrom;
    if ((withinGuarantee ? fullCardCount : cardCount) >= p.burstMinCount || tooLate) rules.push('same_card_burst');

    // 2. night_large_amount: local time in [from, to), which may wrap past midnight, and a large amount.
    const sod = local.hour * 3600 + local.minute * 60 + local.second;
    const atNight = p.nightFrom <= p.nightTo ? sod >= p.nightFrom && sod < p.nightTo : sod >= p.nightFrom || sod < p.nightTo;
    const nightDecline = atNight && event.amount >= p.nightMinFen;
    if (nightDecline) rules.push('night_large_amount');

    // 3. user_daily_cap: the day's charges not declined, evaluated before this one, plus this one, over the cap.
    const dayKey = `${event.userId}${SEP}${localDate}`;
    const before = this.daySums.get(dayKey) ?? 0;
    const capDecline = before + event.amount > p.capFen;
    if (capDecline) rules.push('user_daily_cap');

    // 4. credit_limit: more than the effective quota at t (base, raised by the largest holiday uplift whose local
    // dates contain t, rounded down, within the band, never below the base) less what is owed, never below zero.
    const account = this.accounts.get(event.userId);
    let creditAvailable: number | null = null;
    let creditDecline = false;
    if (account && t < account.openedAtMs) {
      // Dated before the opening: nothing to check it against, so declined (allowed, it would spend without a limit).
      creditDecline = true;
    } else if (account) {
      // The uplift of the charge's local date, only as far as the clock's local date has one too.
      const upliftOn = (date: string) => p.uplifts.filter((w) => date >= w.from && date < w.to).reduce((max, w) => Math.max(max, w.percent), 0);
      const uplift = Math.min(upliftOn(localDate), upliftOn(clockDate));
      let quota = account.quota;
      if (uplift > 0) {
        const raised = Math.floor((account.quota * (100 + uplift)) / 100);
        quota = Math.max(account.quota, Math.min(raised - (raised % p.roundDownToFen), p.bands[account.channel].maxFen));
      }
      creditAvailable = Math.max(0, quota - account.owed);
      creditDecline = event.amount > creditAvailable;
    } else if (p.requireAccount) {
      creditDecline = true;
    }
    if (creditDecline) rules.push('credit_limit');

    const outcome: ModelOutcome = nightDecline || capDecline || creditDecline ? 'decline' : rules.includes('same_card_burst') ? 'review' : 'approve';
    if (outcome !== 'decline' && creditAvailable !== null) account!.owed += event.amount;
    // Settlement: approve at T+delayDays settleTime local, or the clock when that has passed; review the hold after.
    let settleAtMs: number | null = null;
    if (outcome !== 'decline') {
      const h = Math.floor(p.settleTime / 3600);
      const m = Math.floor((p.settleTime % 3600) / 60);
      const tPlusN = local.startOf('day').plus({ days: p.delayDays }).set({ hour: h, minute: m, second: p.settleTime % 60, millisecond: 0 }).toMillis();
      settleAtMs = Math.max(tPlusN, clock) + (outcome === 'review' ? p.holdHours * 3_600_000 : 0);
      this.daySums.set(dayKey, before + event.amount);
    }

    const decision: ModelDecision = {
      eventId: event.eventId,
      userId: event.userId,
      merchantId: event.merchantId,
      cardId: card,
      amount: event.amount,
      occurredAtMs: t,
      clockMs: clock,
      localDate,
      outcome,
      rules,
      cardCount,
      fullCardCount,
      withinGuarantee,
      thinned,
      dayTotalBefore: before,
      creditAvailable,
      settleAtMs,
    };
    this.decisions.set(event.eventId, decision);
    this.order.push(decision);
    this.keepState(decision, cardKey, window, clockDate);
    return decision;
  }

  /** Per burst-window-long bucket (floor(t / window)), its minCount − 1 oldest and newest times, ascending. */
  private thin(times: number[]): number[] {
    const p = this.params;
    const keep = p.burstMinCount - 1;
    const buckets = new Map<number, number[]>();
    for (const x of [...times].sort((a, b) => a - b)) {
      const b = Math.floor(x / p.burstWindowMs);
      (buckets.get(b) ?? buckets.set(b, []).get(b)!).push(x);
    }
    const out: number[] = [];
    for (const xs of buckets.values()) out.push(...xs.filter((_, i) => i < keep || xs.length - 1 - i < keep));
    return out;
  }

  /**
   * The service's retention: a week or more after the user's last prune (by the clock's date), days past retention
   * of the clock's date and card windows idle past window + tolerance before the clock are dropped (as they were
   * before this charge); then this charge's card window and (unless declined) its day are written.
   */
  private keepState(d: ModelDecision, cardKey: string, window: number[], clockDate: string): void {
    const p = this.params;
    const days = this.dayTotals.get(d.userId) ?? new Map<string, { fen: number; n: number }>();
    const kept = days.get(d.localDate) ?? { fen: 0, n: 0 };
    const prunedOn = this.prunedOn.get(d.userId);
    const clockMidnight = DateTime.fromISO(clockDate, { zone: p.zone });
    if (prunedOn === undefined || prunedOn <= clockMidnight.minus({ days: PRUNE_EVERY_DAYS }).toISODate()!) {
      this.prunedOn.set(d.userId, clockDate);
      this.pruneClock.set(d.userId, Math.max(this.pruneClock.get(d.userId) ?? -Infinity, d.clockMs));
      const oldest = clockMidnight.minus({ days: p.dayTotalsDays }).toISODate()!;
      for (const date of [...days.keys()]) if (date < oldest) days.delete(date);
      const idleBefore = d.clockMs - (p.burstWindowMs + p.lateToleranceMs + p.maxFutureSkewMs);
      for (const [key, times] of this.cardKept) {
        if (key.split(SEP)[0] === d.userId && Math.max(...times) < idleBefore) this.cardKept.delete(key);
      }
    }
    this.cardKept.set(cardKey, window);
    this.dayTotals.set(d.userId, days);
    if (d.outcome !== 'decline') days.set(d.localDate, { fen: kept.fen + d.amount, n: kept.n + 1 });
  }

  /**
   * Applies a credit-account event in production order: accepted (or a repeat of an eventId seen: nothing changes)
   * or rejected with the reason label the service gives. The eventId claims of these events are not modelled:
   * streams give every event its own eventId.
   */
  applyAccountEvent(e: ModelAccountEvent): { kind: 'accepted' | 'duplicate' } | { kind: 'rejected'; label: string } {
    if (this.accountEvents.has(e.eventId)) return { kind: 'duplicate' };
    const account = this.accounts.get(e.userId);
    const ms = (iso: string) => DateTime.fromISO(iso, { setZone: true }).toMillis();
    if (e.type === 'account_opened') {
      const band = this.params.bands[e.channel];
      if (e.quota < band.minFen || e.quota > band.maxFen) return { kind: 'rejected', label: 'invalid_field' };
      if (account) return { kind: 'rejected', label: 'conflict' };
      this.accounts.set(e.userId, { channel: e.channel, quota: e.quota, openedAtMs: ms(e.occurredAt), owed: 0 });
    } else if (e.type === 'repayment') {
      if (!account) return { kind: 'rejected', label: 'no_credit_account' };
      if (ms(e.paidAt) < account.openedAtMs) return { kind: 'rejected', label: 'before_opening' };
      account.owed -= Math.min(e.amount, account.owed);
    } else {
      const charge = this.decisions.get(e.chargeId);
      if (!charge) return { kind: 'rejected', label: 'unknown_charge' };
      const before = this.refunded.get(e.chargeId) ?? 0;
      if (charge.userId !== e.userId || charge.outcome === 'decline' || before + e.amount > charge.amount) return { kind: 'rejected', label: 'conflict' };
      this.refunded.set(e.chargeId, before + e.amount);
      if (charge.creditAvailable !== null && account) account.owed -= Math.min(e.amount, account.owed);
    }
    this.accountEvents.add(e.eventId);
    return { kind: 'accepted' };
  }

  /** What a user owes, or undefined without an account. */
  outstanding(userId: string): number | undefined {
    return this.accounts.get(userId)?.owed;
  }

  /** What every account owes together. */
  totalOutstanding(): number {
    return [...this.accounts.values()].reduce((sum, a) => sum + a.owed, 0);
  }

  users(): string[] {
    return [...new Set(this.order.map((d) => d.userId))];
  }

  /** The day-totals hash the service should hold for a user: "<date>" → fen, "<date>#n" → count. */
  dayTotalsHash(userId: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [date, { fen }] of this.dayTotals.get(userId) ?? []) out[date] = String(fen);
    return out;
  }

  /** The cards of a user with the charge times (ms) the service should keep in their windows, in its order. */
  cardWindows(userId: string): { cardId: string; times: number[] }[] {
    const out: { cardId: string; times: number[] }[] = [];
    for (const [key, times] of this.cardKept) {
      const [user, cardId] = key.split(SEP) as [string, string];
      if (user === userId) out.push({ cardId, times: [...times] });
    }
    return out;
  }

  /** The clock's local date at the user's last prune (the state's "p"). */
  prunedOnOf(userId: string): string | undefined {
    return this.prunedOn.get(userId);
  }

  /** Non-declined fen per local day of a user, as the rule counts them (never pruned). */
  dayTotalsAsWritten(userId: string): Map<string, number> {
    const out = new Map<string, number>();
    for (const [key, fen] of this.daySums) {
      const [user, date] = key.split(SEP) as [string, string];
      if (user === userId) out.set(date, fen);
    }
    return out;
  }

  /** eventId → settleAt ms of every decision that settles (approve and review). */
  settlements(): Map<string, number> {
    const out = new Map<string, number>();
    for (const d of this.order) if (d.settleAtMs !== null) out.set(d.eventId, d.settleAtMs);
    return out;
  }

  /**
   * Whether a decision's settlement waits for a person once its deadline has passed: a review whose case is above
   * the four-eyes amount (src/cases/) is never paid by a settlement run; nobody decides cases in these streams.
   */
  waitsForPerson(d: ModelDecision): boolean {
    return d.outcome === 'review' && d.amount > this.params.fourEyesAboveFen;
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

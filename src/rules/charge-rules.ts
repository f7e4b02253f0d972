/**
 * Turns a validated charge into the keys and arguments of the rules script. All calendar work (local date and
 * time, T+1 settlement instant, hold) happens here in the configured zone; the script counts and decides.
 */
import { createHash } from 'node:crypto';
import type { RiskmonConfig } from '../config.ts';
import { CardHasher, cardLast4 } from '../events/card.ts';
import type { ChargeEvent, QueuedCharge } from '../events/schema.ts';
import type { Keys } from '../redis/keys.ts';
import { loadScript } from '../redis/scripts.ts';
import type { ZoneCalendar } from '../time/calendar.ts';

export const evaluateChargeScript = loadScript(new URL('./evaluateCharge-6.lua', import.meta.url));

const DAY_MS = 86_400_000;

export interface ChargeRuleDeps {
  config: RiskmonConfig;
  configVersion: string;
  calendar: ZoneCalendar;
  cards: CardHasher;
  keys: Keys;
}

export class ChargeRules {
  private readonly fixedArgs: {
    burstWindowMs: number;
    burstMinCount: number;
    cardKeepMs: number;
    nightFrom: number;
    nightTo: number;
    nightMin: number;
    cap: number;
    decisionTtl: number;
    streamMaxLen: number;
    dayTtl: number;
    burstLabel: string;
    nightLabel: string;
  };

  constructor(private readonly deps: ChargeRuleDeps) {
    const { rules, retention } = deps.config;
    const burst = rules.sameCardBurst;
    this.fixedArgs = {
      burstWindowMs: burst.windowSeconds * 1000,
      burstMinCount: burst.minCount,
      cardKeepMs: (burst.windowSeconds + burst.lateToleranceSeconds) * 1000,
      nightFrom: rules.nightLargeAmount.from,
      nightTo: rules.nightLargeAmount.to,
      nightMin: rules.nightLargeAmount.minAmountFen,
      cap: rules.userDailyCap.capFen,
      decisionTtl: retention.decisionDays * 86_400,
      streamMaxLen: retention.decisionStreamMaxLen,
      dayTtl: retention.dayTotalsDays * 86_400,
      burstLabel: burst.windowSeconds % 60 === 0 ? `${burst.windowSeconds / 60} min` : `${burst.windowSeconds} s`,
      nightLabel: `${clock(rules.nightLargeAmount.from)}–${clock(rules.nightLargeAmount.to)}`,
    };
  }

  /** Settlement instant of an approved charge: settleTime local on the local date delayDays after it (T+1). */
  approveSettleAt(occurredAtMs: number): number {
    const { settlement } = this.deps.config;
    return this.deps.calendar.atLocalTimeDaysAfter(occurredAtMs, settlement.delayDays, settlement.settleTime);
  }

  /** A charge sent to review is held: holdHours after the T+1 instant. */
  reviewSettleAt(occurredAtMs: number): number {
    return this.approveSettleAt(occurredAtMs) + this.deps.config.settlement.holdHours * 3_600_000;
  }

  scriptCall(event: ChargeEvent | QueuedCharge, occurredAtMs: number, nowMs: number): { keys: string[]; args: (string | number)[] } {
    const { keys, calendar, cards, configVersion } = this.deps;
    const f = this.fixedArgs;
    const local = calendar.local(occurredAtMs);
    const approveAt = this.approveSettleAt(occurredAtMs);
    const reviewAt = this.reviewSettleAt(occurredAtMs);
    // Relative to the event, not the wall clock, so replays of old streams keep their day totals.
    const oldestDay = calendar.local(occurredAtMs - this.deps.config.retention.dayTotalsDays * DAY_MS).date;
    return {
      keys: [
        keys.decision(event.eventId),
        keys.cardWindow(event.userId, 'cardToken' in event ? event.cardToken : cards.token(event.cardId)),
        keys.userDays(event.userId),
        keys.decisionStream,
        keys.settlementDue,
        keys.settlementStats,
      ],
      args: [
        event.eventId,
        event.userId,
        event.merchantId,
        event.amount,
        occurredAtMs,
        event.occurredAt,
        local.date,
        local.time,
        local.secondOfDay,
        windowMember(event.eventId),
        'cardLast4' in event ? event.cardLast4 : cardLast4(event.cardId),
        f.burstWindowMs,
        f.burstMinCount,
        f.cardKeepMs,
        f.nightFrom,
        f.nightTo,
        f.nightMin,
        f.cap,
        approveAt,
        new Date(approveAt).toISOString(),
        reviewAt,
        new Date(reviewAt).toISOString(),
        new Date(nowMs).toISOString(),
        configVersion,
        f.decisionTtl,
        f.streamMaxLen,
        oldestDay,
        f.dayTtl,
        f.burstLabel,
        f.nightLabel,
      ],
    };
  }
}

/** 12 base64 characters of SHA-1: unique enough inside one card's window, small enough for listpack encoding. */
export function windowMember(eventId: string): string {
  return createHash('sha1').update(eventId).digest('base64').slice(0, 12);
}

function clock(secondOfDay: number): string {
  const h = Math.floor(secondOfDay / 3600);
  const m = Math.floor((secondOfDay % 3600) / 60);
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`;
}

/**
 * Turns a validated charge into the keys and arguments of the rules script. All calendar work (local date and
 * time, T+1 settlement instant, hold) happens here in the configured zone; the script counts and decides.
 */
import * as crypto from 'node:crypto';
import type { RiskmonConfig } from '../config.ts';
import { CardHasher, cardLast4 } from '../events/card.ts';
import type { Outcome, RuleName } from '../decisions/decision.ts';
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

/** Per local date: the settlement instants (T+1, and held) and the oldest day-total date to keep. */
interface DateFacts {
  approveAt: number;
  approveIso: string;
  reviewAt: number;
  reviewIso: string;
}

const CACHE_LIMIT = 10_000;

export class ChargeRules {
  /** The script's rule configuration argument (ARGV[18]), encoded once: it is the same for every call. */
  private readonly configArg: string;
  private readonly dateFacts = new Map<string, DateFacts>();
  private lastNowMs = NaN;
  private lastNowIso = '';

  constructor(private readonly deps: ChargeRuleDeps) {
    const { rules, retention } = deps.config;
    const burst = rules.sameCardBurst;
    // ASCII only (non-ASCII as \u escapes, which cjson decodes back to UTF-8): one non-ASCII character would make
    // every pipelined command string two-byte in V8, doubling the cost of writing it to the socket.
    this.configArg = asciiJson([
      burst.windowSeconds * 1000,
      burst.minCount,
      (burst.windowSeconds + burst.lateToleranceSeconds) * 1000,
      rules.nightLargeAmount.from,
      rules.nightLargeAmount.to,
      rules.nightLargeAmount.minAmountFen,
      rules.userDailyCap.capFen,
      retention.decisionDays * 86_400,
      retention.decisionStreamMaxLen,
      retention.dayTotalsDays * 86_400,
      burst.windowSeconds % 60 === 0 ? `${burst.windowSeconds / 60} min` : `${burst.windowSeconds} s`,
      `${clock(rules.nightLargeAmount.from)}–${clock(rules.nightLargeAmount.to)}`,
      deps.configVersion,
    ]);
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
    const { keys, calendar, cards } = this.deps;
    const local = calendar.local(occurredAtMs);
    const facts = this.factsFor(local.date, occurredAtMs);
    // Relative to the event, not the wall clock, so replays of old streams keep their day totals.
    const oldestDay = calendar.local(occurredAtMs - this.deps.config.retention.dayTotalsDays * DAY_MS).date;
    if (nowMs !== this.lastNowMs) {
      // A batch shares one decision time: format it once.
      this.lastNowMs = nowMs;
      this.lastNowIso = new Date(nowMs).toISOString();
    }
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
        facts.approveAt,
        facts.approveIso,
        facts.reviewAt,
        facts.reviewIso,
        this.lastNowIso,
        oldestDay,
        this.configArg,
      ],
    };
  }

  /** Settlement facts depend only on the local date: computed once per date, not per charge. */
  private factsFor(date: string, occurredAtMs: number): DateFacts {
    let facts = this.dateFacts.get(date);
    if (facts === undefined) {
      const approveAt = this.approveSettleAt(occurredAtMs);
      const reviewAt = approveAt + this.deps.config.settlement.holdHours * 3_600_000;
      facts = { approveAt, approveIso: new Date(approveAt).toISOString(), reviewAt, reviewIso: new Date(reviewAt).toISOString() };
      if (this.dateFacts.size >= CACHE_LIMIT) this.dateFacts.clear();
      this.dateFacts.set(date, facts);
    }
    return facts;
  }
}

/** What the rules script answers for a new decision (see evaluateCharge-6.lua). */
export interface DecisionSummary {
  outcome: Outcome;
  settleAt: string | null;
  rules: RuleName[];
}

/** Reads "<outcome> <settleAt or -> <rules or ->". */
export function parseDecisionSummary(summary: string): DecisionSummary {
  const [outcome, settleAt, rules] = summary.split(' ') as [Outcome, string, string];
  return { outcome, settleAt: settleAt === '-' ? null : settleAt, rules: rules === '-' ? [] : (rules.split(',') as RuleName[]) };
}

/** 12 base64 characters of SHA-1: unique enough inside one card's window, small enough for listpack encoding. */
export function windowMember(eventId: string): string {
  return sha1Base64(eventId).slice(0, 12);
}

function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** One-shot crypto.hash where Node has it (≥ 20.12, noticeably cheaper per charge), else a Hash object. */
const sha1Base64: (text: string) => string =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('sha1', text, 'base64')
    : (text) => crypto.createHash('sha1').update(text).digest('base64');

function clock(secondOfDay: number): string {
  const h = Math.floor(secondOfDay / 3600);
  const m = Math.floor((secondOfDay % 3600) / 60);
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`;
}

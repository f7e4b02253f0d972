/**
 * Turns a validated charge into the keys and arguments of the rules script. All calendar work (local date and
 * time, T+1 settlement instant, hold) happens here in the configured zone; the script counts and decides.
 */
import type { RiskmonConfig } from '../config.ts';
import { tokenizeCharge, type CardHasher } from '../events/card.ts';
import type { Outcome } from '../decisions/decision.ts';
import { parseChargeRecord, RECORD_GENERATION_DAYS, recordDay, recordGeneration, recordPart, type ChargeRecord } from '../decisions/charge-record.ts';
import { RULES, type RuleName, type RulesConfig } from './registry.ts';
import type { ChargeFacts, RuleModule } from './rule.ts';
import { rulesScript } from './script.ts';
import type { ChargeEvent, QueuedCharge } from '../events/schema.ts';
import type { Keys } from '../redis/keys.ts';
import type { ZoneCalendar } from '../time/calendar.ts';
import { DAY_MS } from '../time/calendar.ts';

/** The rules script: evaluateCharges-n.lua with every rule's fragment spliced in (script.ts). */
const assembled = rulesScript(new URL('./evaluateCharges-n.lua', import.meta.url), RULES);
export const evaluateChargesScript = assembled.script;

/**
 * Charges per script call at most. A call holds Redis for its whole run (about 20 µs per charge), and every charge
 * adds 2 keys and 5 arguments; 200 keeps a call near 4 ms and the per-call cost spread thin.
 */
export const CHARGES_PER_CALL = 200;


export interface ChargeRuleDeps {
  /** The configuration the process started with: zone, settlement, retention, and the rules until one is published. */
  config: RiskmonConfig;
  configVersion: string;
  calendar: ZoneCalendar;
  cards: CardHasher;
  keys: Keys;
}

/** A rules configuration as the hot path uses it: its version, and the script's configuration argument. */
export interface RuleSet {
  version: string;
  rules: RulesConfig;
  /** ARGV[1] of the rules script, encoded once per version. */
  configArg: string;
}

const decidedBefore = RULES.filter((r) => r.decide !== undefined) as readonly RuleModule[];

/** A validated charge with its instant and its producer clock, ready for the rules script. */
export interface ChargeInput {
  event: ChargeEvent | QueuedCharge;
  occurredAtMs: number;
  /** The producer's clock when it accepted the charge: settlement never starts before it, pruning follows it. */
  clockMs: number;
}

/** Per local date of a charge: its T+1 settlement instant and the held one. */
interface DateFacts {
  approveAt: number;
  approveIso: string;
  reviewAt: number;
  reviewIso: string;
}

/** Per local date of the clock: the oldest day total to keep, and the latest prune date that makes a prune due. */
interface ClockFacts {
  oldestDay: string;
  pruneDue: string;
}

/** A user's rule state is pruned at most once a week (see evaluateCharges-n.lua), and lives that much longer. */
export const PRUNE_EVERY_DAYS = 7;

const CACHE_LIMIT = 10_000;

export class ChargeRules {
  /** The rules in use; use() switches them, between calls. */
  private ruleSet: RuleSet;
  /** Per shard, the keys the rules read once per call, in the order the script takes them. */
  private readonly ruleKeys = new Map<number, string[]>();
  /** Per charge, the user's keys the rules read besides the rule state (one block per @userkey). */
  private readonly userKeys: ((userId: string) => string)[];
  private readonly dateFacts = new Map<string, DateFacts>();
  private readonly clockFacts = new Map<string, ClockFacts>();
  /** The last clock's local date: a live batch's clocks are mostly one flush's. */
  private lastClock = { ms: NaN, date: '' };

  constructor(private readonly deps: ChargeRuleDeps) {
    this.ruleSet = this.compile(deps.config.rules, deps.configVersion);
    this.ruleKeysOf(0);
    this.userKeys = assembled.userKeys.map(({ rule, name }) => {
      const key = rule.userKeys!(deps.keys)[name];
      if (key === undefined) throw new Error(`rule ${rule.name}: userKeys() gives no key ${name}, which its fragment reads`);
      return key;
    });
  }

  private ruleKeysOf(shard: number): string[] {
    let keys = this.ruleKeys.get(shard);
    if (!keys) {
      keys = assembled.keys.map(({ rule, name }) => {
        const key = rule.keys!(this.deps.keys, shard)[name];
        if (key === undefined) throw new Error(`rule ${rule.name}: keys() gives no key ${name}, which its fragment reads`);
        return key;
      });
      this.ruleKeys.set(shard, keys);
    }
    return keys;
  }

  /** A rules configuration (validated by the caller) made ready for the hot path. */
  compile(rules: RulesConfig, version: string): RuleSet {
    const { config } = this.deps;
    const { retention } = config;
    const ruleConfig = (r: RuleModule, of: RulesConfig) => (of as Record<string, unknown>)[r.configKey] as never;
    // ASCII only (non-ASCII as \u escapes, which cjson decodes back to UTF-8): one non-ASCII character would make
    // every pipelined command string two-byte in V8, doubling the cost of writing it to the socket.
    const configArg = asciiJson({
      decisionTtl: retention.decisionDays * 86_400,
      streamMaxLen: retention.decisionStreamMaxLen,
      stateTtl: (retention.dayTotalsDays + PRUNE_EVERY_DAYS) * 86_400,
      // A record hash is created by its generation's first charge and must keep its last one the retention.
      recordTtl: (RECORD_GENERATION_DAYS + retention.decisionDays + 1) * 86_400,
      version,
      rules: Object.fromEntries(
        (RULES as readonly RuleModule[])
          .filter((r) => r.scriptConfig)
          .map((r) => [r.configKey, r.scriptConfig!(ruleConfig(r, rules), ruleConfig(r, config.rules), { maxFutureSkewSeconds: config.events.maxFutureSkewSeconds, calibration: config.calibration })]),
      ),
    });
    return { version, rules, configArg };
  }

  /** Decide the next calls with this rule set (a worker switches between batches, never inside one). */
  use(ruleSet: RuleSet): void {
    this.ruleSet = ruleSet;
  }

  get current(): RuleSet {
    return this.ruleSet;
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

  /** The generation of the record hash a charge at `occurredAtMs` has its record in (its local date's). */
  recordGenerationAt(occurredAtMs: number): number {
    return recordGeneration(this.deps.calendar.local(occurredAtMs).date);
  }

  private clockDate(clockMs: number): string {
    if (clockMs !== this.lastClock.ms) this.lastClock = { ms: clockMs, date: this.deps.calendar.local(clockMs).date };
    return this.lastClock.date;
  }

  /**
   * Keys and arguments of one evaluateCharges call over `charges`, decided in that order (at most
   * CHARGES_PER_CALL). `nowMs` is the decision time of them all.
   */
  scriptCall(charges: readonly ChargeInput[], nowMs: number): { keys: string[]; args: (string | number)[] } {
    if (charges.length > CHARGES_PER_CALL) throw new RangeError(`at most ${CHARGES_PER_CALL} charges per call, got ${charges.length}`);
    const { keys, calendar, cards } = this.deps;
    // One call, one slot: its charges' users share a shard (a risk queue's batch is one shard's).
    const shard = charges.length > 0 ? keys.shardOf(charges[0]!.event.userId) : 0;
    const { holdHours } = this.deps.config.settlement;
    const decisionKeys: string[] = [];
    const stateKeys: string[] = [];
    const recordKeys: string[] = [];
    const userKeyBlocks: string[][] = this.userKeys.map(() => []);
    const groupArgs: (string | number)[] = [];
    const chargeArgs: (string | number)[] = [];
    const groupIndex = new Map<string, number>();
    const firings: (string | number)[] = [];
    const rules = this.ruleSet.rules as Record<string, unknown>;
    for (const [i, { event, occurredAtMs, clockMs }] of charges.entries()) {
      const local = calendar.local(occurredAtMs);
      if (decidedBefore.length > 0) {
        const facts: ChargeFacts = { amount: event.amount, merchantId: event.merchantId, occurredAtMs, localTime: local.time, secondOfDay: local.secondOfDay };
        for (const rule of decidedBefore) {
          const reason = rule.decide!(facts, rules[rule.configKey] as never);
          if (reason !== null) firings.push(i + 1, rule.name, reason);
        }
      }
      const clockDate = this.clockDate(clockMs);
      const facts = this.factsFor(local.date, occurredAtMs);
      // Late (the clock is past T+1): paid at the clock, held from the clock, never at an instant already past.
      const late = clockMs > facts.approveAt;
      const groupKey = late ? `${local.date}|${clockDate}|${clockMs}` : `${local.date}|${clockDate}`;
      let index = groupIndex.get(groupKey);
      if (index === undefined) {
        index = groupIndex.size + 1;
        groupIndex.set(groupKey, index);
        const c = this.clockFactsFor(clockDate);
        const digits = recordDay(local.date);
        if (late) {
          const reviewAt = clockMs + holdHours * 3_600_000;
          groupArgs.push(local.date, clockMs, new Date(clockMs).toISOString(), reviewAt, new Date(reviewAt).toISOString(), c.oldestDay, c.pruneDue, clockDate);
          groupArgs.push(clockMs.toString(36), reviewAt.toString(36), digits);
        } else {
          groupArgs.push(local.date, facts.approveAt, facts.approveIso, facts.reviewAt, facts.reviewIso, c.oldestDay, c.pruneDue, clockDate);
          groupArgs.push(facts.approveAt.toString(36), facts.reviewAt.toString(36), digits);
        }
      }
      if (i > 0 && keys.shardOf(event.userId) !== shard) {
        throw new RangeError(`charges of shards ${shard} and ${keys.shardOf(event.userId)} in one call: a call's keys must be in one slot`);
      }
      decisionKeys.push(keys.decision(shard, event.eventId));
      stateKeys.push(keys.ruleState(event.userId));
      recordKeys.push(keys.chargeRecords(shard, recordGeneration(local.date), recordPart(event.eventId, keys.chargeRecordParts)));
      for (let b = 0; b < userKeyBlocks.length; b++) userKeyBlocks[b]!.push(this.userKeys[b]!(event.userId));
      const tokenized = 'cardToken' in event;
      const queued = tokenized ? event : tokenizeCharge(event, cards);
      const plain = isPlainJsonText(event.eventId) && isPlainJsonText(event.userId) && isPlainJsonText(event.merchantId) && isPlainJsonText(queued.cardLast4);
      chargeArgs.push(
        event.eventId,
        event.userId,
        event.merchantId,
        queued.cardLast4,
        // None of these can hold a space: validated integers, a strict ISO instant, a base64url token, a flag.
        `${event.amount} ${event.occurredAt} ${occurredAtMs.toString(36)} ${index} ${local.time} ${local.secondOfDay} ${queued.cardToken} ${clockMs.toString(36)} ${plain ? 1 : 0}`,
      );
    }
    return {
      keys: [keys.decisionStream(shard), keys.settlementDue(shard), keys.settlementStats(shard), keys.settlementInfo(shard), keys.cases(shard), keys.caseOfCharge(shard), keys.caseQueue(shard), keys.caseLog(shard), ...this.ruleKeysOf(shard), ...decisionKeys, ...stateKeys, ...recordKeys, ...userKeyBlocks.flat()],
      args: [this.ruleSet.configArg, `${new Date(nowMs).toISOString()} ${nowMs}`, groupIndex.size, ...groupArgs, firings.length / 3, ...firings, ...chargeArgs],
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

  /** Pruning is relative to the clock's local date, never to a charge's own date (contract v1.1). */
  private clockFactsFor(clockDate: string): ClockFacts {
    let facts = this.clockFacts.get(clockDate);
    if (facts === undefined) {
      const daysBefore = (n: number) => new Date(Date.parse(`${clockDate}T00:00:00Z`) - n * DAY_MS).toISOString().slice(0, 10);
      facts = {
        oldestDay: daysBefore(this.deps.config.retention.dayTotalsDays),
        pruneDue: daysBefore(PRUNE_EVERY_DAYS),
      };
      if (this.clockFacts.size >= CACHE_LIMIT) this.clockFacts.clear();
      this.clockFacts.set(clockDate, facts);
    }
    return facts;
  }
}

/**
 * Whether the rules script may quote `text` into JSON as it is: nothing that lua-cjson escapes (control characters
 * as Lua's %c has them, '"', '\\', '/'). Checked here because a V8 regex is far cheaper than a Lua pattern.
 */
export function isPlainJsonText(text: string): boolean {
  return !NEEDS_JSON_ESCAPE.test(text);
}
const NEEDS_JSON_ESCAPE = /[\u0000-\u001f\u007f"\\/]/;

/** What the rules script answers for a new decision (see evaluateCharges-n.lua). */
export interface DecisionSummary {
  outcome: Outcome;
  settleAt: string | null;
  rules: RuleName[];
}

/** One charge's reply: a new decision's summary, an earlier decision's charge record, or the error it met. */
export type ChargeReply = { kind: 'new'; summary: DecisionSummary } | { kind: 'duplicate'; record: ChargeRecord } | { kind: 'error'; message: string };

/** `generation`: of the record hash the charge's record is looked for in (its local date's). */
export function parseChargeReply(reply: string, generation: number): ChargeReply {
  const body = reply.slice(1);
  switch (reply[0]) {
    case 'N':
      return { kind: 'new', summary: parseDecisionSummary(body) };
    case 'D':
      try {
        return { kind: 'duplicate', record: parseChargeRecord(body, generation) };
      } catch (e) {
        return { kind: 'error', message: (e as Error).message };
      }
    case 'E':
      return { kind: 'error', message: body };
    default:
      return { kind: 'error', message: `unexpected reply from the rules script: ${JSON.stringify(reply.slice(0, 80))}` };
  }
}

/** Reads "<outcome> <settleAt or -> <rules or ->". */
export function parseDecisionSummary(summary: string): DecisionSummary {
  const [outcome, settleAt, rules] = summary.split(' ') as [Outcome, string, string];
  return { outcome, settleAt: settleAt === '-' ? null : settleAt, rules: rules === '-' ? [] : (rules.split(',') as RuleName[]) };
}

function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

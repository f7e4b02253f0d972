/**
 * The charge record: what Redis keeps of a decided charge once its whole decision has gone to the archive, for at
 * least retention.decisionDays from its local date. It is the charge's dedupe (a redelivered or resent charge gets
 * this back, never a second decision) and what a refund checks (src/quota/applyRefund-n.lua). The rules script
 * writes it (evaluateCharges-n.lua); this module places and reads it.
 *
 * Records are kept in buckets, not a key per charge or per user (a key costs more than a record): a field eventId of
 * a small hash of the charge's shard, its generation (the RECORD_GENERATION_DAYS of local dates it falls in) and its
 * part (of retention.chargeRecordHashesPerShard, by the eventId's hash), which expires as a whole when its youngest
 * record is past the retention. The parts keep each hash small enough for Redis's compact listpack encoding; their
 * number is part of the namespace's layout (another count would look for records in other hashes and decide
 * charges twice), recorded and checked at start like the shard count.
 *
 * Format, one short line:
 *   "<outcome><amount> <settleAt> <day> <flags> <rules> <merchantId> <userId>"
 *   outcome    a (approve), r (review), d (decline)
 *   amount     fen, decimal
 *   settleAt   the settlement instant in ms, base 36, or "-" when declined
 *   day        the charge's local date as its day within the hash's generation, 0 to 6 (the hash's key names the
 *              generation: reading a record takes the generation it was found in)
 *   flags      what the rules' fragments add (@record), "-" for none: "c" when credit_limit counted the charge
 *              against the user's credit account
 *   rules      the rules it fired, in rule order, each as its index in the registry (base 36), "-" for none
 *   merchantId its merchant, "%" and " " written %25 and %20 (a refund of the paid charge reverses it there)
 *   userId     its user (the rest of the line): a record is only ever another charge of the same user
 */
import type { Outcome } from './decision.ts';
import { RULE_NAMES, type RuleName } from '../rules/registry.ts';
import type { RedisClient } from '../redis/client.ts';
import type { Keys } from '../redis/keys.ts';
import { claimField } from './claims.ts';
import { DAY_MS } from '../time/calendar.ts';

/** Local dates per generation of record hashes. */
export const RECORD_GENERATION_DAYS = 7;

export interface ChargeRecord {
  outcome: Outcome;
  /** fen */
  amount: number;
  /** ISO instant, or null when declined. */
  settleAt: string | null;
  /** YYYY-MM-DD */
  localDate: string;
  /** credit_limit counted the charge against the user's credit account. */
  creditCounted: boolean;
  /** Every rule it fired, in rule order. */
  rules: RuleName[];
  merchantId: string;
  userId: string;
}

const OUTCOMES: Record<string, Outcome> = { a: 'approve', r: 'review', d: 'decline' };
// Fields are separated by single spaces; the merchant, the only one that could hold a space, has it escaped.
const RECORD = /^([ard])(\d+) (-|[0-9a-z]+) ([0-6]) ([^ ]+) (-|[0-9a-z]+) ([^ ]+) (.*)$/s;

/** A record as stored in a hash of `generation` (see recordGeneration). */
export function parseChargeRecord(text: string, generation: number): ChargeRecord {
  const m = RECORD.exec(text);
  if (!m) throw new Error(`not a charge record: ${JSON.stringify(text.slice(0, 80))}`);
  const [, o, amount, settle, day, flags, codes, merchant, userId] = m;
  const rules = codes === '-' ? [] : [...codes!].map((c) => RULE_NAMES[parseInt(c, 36)] ?? fail(`rule code ${c}`));
  return {
    outcome: OUTCOMES[o!]!,
    amount: Number(amount),
    settleAt: settle === '-' ? null : new Date(parseInt(settle!, 36)).toISOString(),
    localDate: new Date((generation * RECORD_GENERATION_DAYS + Number(day)) * DAY_MS).toISOString().slice(0, 10),
    creditCounted: flags!.includes('c'),
    rules,
    merchantId: merchant!.replace(/%(20|25)/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))),
    userId: userId!,
  };

  function fail(what: string): never {
    throw new Error(`not a charge record (unknown ${what}): ${JSON.stringify(text.slice(0, 80))}`);
  }
}

/** The generation of a local date (YYYY-MM-DD or YYYYMMDD): whole RECORD_GENERATION_DAYS since 1970-01-01. */
export function recordGeneration(localDate: string): number {
  return Math.floor(epochDay(localDate) / RECORD_GENERATION_DAYS);
}

/** A local date's day within its generation, as the record writes it ("0" to "6"). */
export function recordDay(localDate: string): string {
  return String(epochDay(localDate) - recordGeneration(localDate) * RECORD_GENERATION_DAYS);
}

/** The local dates of a generation, YYYYMMDD each, concatenated in day order (for scripts that read records). */
export function recordDates(generation: number): string {
  return Array.from({ length: RECORD_GENERATION_DAYS }, (_, d) => new Date((generation * RECORD_GENERATION_DAYS + d) * DAY_MS).toISOString().slice(0, 10).replaceAll('-', '')).join('');
}

function epochDay(localDate: string): number {
  const digits = localDate.replaceAll('-', '');
  return Date.UTC(Number(digits.slice(0, 4)), Number(digits.slice(4, 6)) - 1, Number(digits.slice(6, 8))) / DAY_MS;
}

/** The part of an eventId's record hash (the claim's field hash, so both spread alike). */
export function recordPart(eventId: string, parts: number): number {
  return claimField(eventId, parts).part;
}

/**
 * The record hashes a charge of `localDate` may be in, newest first: from the generation of `latestDate` back to
 * the one holding `latestDate` − `days` (a refund looks for its charge there).
 */
export function recordGenerationsBack(latestDate: string, days: number): number[] {
  const newest = recordGeneration(latestDate);
  const oldest = Math.floor((epochDay(latestDate) - days) / RECORD_GENERATION_DAYS);
  return Array.from({ length: newest - oldest + 1 }, (_, i) => newest - i);
}

/**
 * Where the record of `chargeId`, a charge of `userId` that a later event (a refund, a complaint) of local date
 * `eventDate` names, may be: the record hashes of its user's shard from the generation of the day after `eventDate`
 * back past `decisionDays` (newest first), each with its generation's dates for the script (findCharge in
 * src/decisions/charge-record.lua), and the oldest local date a charge still counts from (YYYYMMDD). A charge of
 * another user is not found there.
 */
export function chargeRecordSearch(keys: Keys, userId: string, chargeId: string, eventDate: string, decisionDays: number): { keys: string[]; dates: string[]; oldest: string } {
  const midnight = Date.parse(`${eventDate}T00:00:00Z`);
  const latest = new Date(midnight + DAY_MS).toISOString().slice(0, 10);
  const oldest = new Date(midnight - decisionDays * DAY_MS).toISOString().slice(0, 10);
  const shard = keys.shardOf(userId);
  const part = recordPart(chargeId, keys.chargeRecordParts);
  const generations = recordGenerationsBack(latest, decisionDays + 1);
  return { keys: generations.map((g) => keys.chargeRecords(shard, g, part)), dates: generations.map(recordDates), oldest: oldest.replaceAll('-', '') };
}

/** Reading records back (operators, tests). */
export class ChargeRecords {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  /** The key of the hash holding the record of `eventId`, a charge of `userId` on `localDate`. */
  key(userId: string, eventId: string, localDate: string): string {
    return this.keys.chargeRecords(this.keys.shardOf(userId), recordGeneration(localDate), recordPart(eventId, this.keys.chargeRecordParts));
  }

  /** The record of `eventId`, a charge of `userId` on `localDate` (local, YYYY-MM-DD), or null. */
  async get(userId: string, eventId: string, localDate: string): Promise<ChargeRecord | null> {
    const text = await this.redis.hget(this.key(userId, eventId, localDate), eventId);
    if (text === null) return null;
    const record = parseChargeRecord(text, recordGeneration(localDate));
    return record.userId === userId ? record : null;
  }
}

/**
 * Every Redis key and queue name of one namespace, in one place. All keys start with `rm:<namespace>:`, so a
 * replay's namespace never touches live data. Per-user state shares the `{userId}` hash tag (one Cluster slot).
 */
import { shardOf } from '../pipeline/shards.ts';

export const SETTLEMENT_QUEUE = 'settlement';
export const CALIBRATION_QUEUE = 'calibration';

export function riskQueueName(shard: number): string {
  return `risk-${shard}`;
}

/**
 * The hash tag of a user's keys: `{<userId>}` with "%", "{" and "}" percent-encoded, so no userId can end the tag
 * early ("a}b" would share user "a"'s slot) or empty it ("}…" hashes the whole key). Ids without those characters
 * are unchanged, and the encoding is one-to-one.
 */
export function userTag(userId: string): string {
  return `{${/[%{}]/.test(userId) ? userId.replace(/[%{}]/g, (c) => (c === '%' ? '%25' : c === '{' ? '%7B' : '%7D')) : userId}}`;
}

/** Claim keys are spread over this many hash tags (one script call per bucket and round on Redis Cluster). */
export const CLAIM_BUCKETS = 64;

export class Keys {
  readonly base: string;

  constructor(readonly namespace: string) {
    this.base = `rm:${namespace}`;
  }

  /** BullMQ `prefix` option for every queue of the namespace (never ioredis keyPrefix). */
  get queuePrefix(): string {
    return `${this.base}:q`;
  }

  /**
   * The claim of an eventId (src/decisions/claims.ts): the canonical content of the first accepted event that
   * carried it, across every type and user. A repeat with other content is rejected.
   */
  eventClaim(eventId: string): string {
    return `${this.base}:id:{${shardOf(eventId, CLAIM_BUCKETS)}}:${eventId}`;
  }

  /** Stored decision; its existence is the charge's redelivery dedupe (the claim is the eventId's). */
  decision(eventId: string): string {
    return `${this.base}:dec:${eventId}`;
  }

  /**
   * Hash of a user's rule state: each rule's fields ("<date>" → fen not declined that local day and "<date>#n" →
   * their count: user-daily-cap.ts; "c:<cardToken>" → the card's recent charge times: same-card-burst.ts) and
   * "p" → date of the last prune (src/rules/rule-state.ts, evaluateCharges-n.lua).
   */
  ruleState(userId: string): string {
    return `${this.base}:u:${userTag(userId)}:rules`;
  }

  /**
   * Hash of the merchant admission list: merchantId → its entries, a JSON array (src/lists/lists.ts). The
   * rules script reads it in the same call that decides (merchant_blocklisted).
   */
  get merchantList(): string {
    return `${this.base}:lists:merchants`;
  }

  /** Stream of every change to the merchant list: who, when, what (src/lists/lists.ts). */
  get merchantListHistory(): string {
    return `${this.base}:lists:merchants:history`;
  }

  /** Hash of frozen users: userId → its entries, as the merchant list's (src/lists/lists.ts; user_frozen reads it). */
  get userList(): string {
    return `${this.base}:lists:users`;
  }

  /** Stream of every change to the user list (one stream per list: the change script takes a list and its history). */
  get userListHistory(): string {
    return `${this.base}:lists:users:history`;
  }

  /**
   * Hash of blocklisted cards: card token (the producer's keyed hash, never the number) → its entries, each with the
   * card's last four (src/lists/lists.ts; card_blocklisted reads it).
   */
  get cardList(): string {
    return `${this.base}:lists:cards`;
  }

  /** Stream of every change to the card list: records name the card by token and last four only. */
  get cardListHistory(): string {
    return `${this.base}:lists:cards:history`;
  }

  /** Hash of the published rules versions: version number → its record, JSON (src/rules/published.ts). */
  get rulesVersions(): string {
    return `${this.base}:rules:versions`;
  }

  /** String: the published rules version the workers decide with (absent: their configuration file). */
  get rulesLive(): string {
    return `${this.base}:rules:live`;
  }

  /** Stream of every publish and rollback: who, when, which version, why. */
  get rulesHistory(): string {
    return `${this.base}:rules:history`;
  }

  /** Stream of every new decision, for downstream consumers. */
  get decisionStream(): string {
    return `${this.base}:decisions`;
  }

  /** Hash of inputs the producers refused, by reason: a running count (riskmon_producer_rejected_events). */
  get producerRejections(): string {
    return `${this.base}:producer:rejected`;
  }

  /** Stream of rejected events with their reasons. */
  get deadLetter(): string {
    return `${this.base}:deadletter`;
  }

  /** Sorted set of the dead-letter sources already recorded (a redelivery is not recorded twice), capped like the stream. */
  get deadLetterSources(): string {
    return `${this.base}:deadletter:seen`;
  }

  /** Sorted set of transactions awaiting settlement (members: eventId, scores: settleAt ms). */
  get settlementDue(): string {
    return `${this.base}:settle:due`;
  }

  /** Hash of running settlement totals: scheduled/held count and amount. */
  get settlementStats(): string {
    return `${this.base}:settle:stats`;
  }

  /** Fenfu ledger of one settlement date: "<merchantId>\tcount" and "<merchantId>\tamount", kept apart from all else. */
  ledger(settleDate: string): string {
    return `${this.base}:fenfu:ledger:${settleDate}`;
  }

  /** The transactions settled on one date: eventId → "merchant\tamount\tkind" (the guard is `settledMarkers`). */
  ledgerEntries(settleDate: string): string {
    return `${this.base}:fenfu:ledger:${settleDate}:tx`;
  }

  /**
   * Hash of every eventId ever settled → its settlement date: the exactly-once guard of settlement, kept as long as
   * the ledgers (no expiry; it outlives decisions, so a redelivered charge decided again is not paid twice).
   */
  get settledMarkers(): string {
    return `${this.base}:fenfu:settled`;
  }

  /** Settlement dates that have a ledger. */
  get ledgerDates(): string {
    return `${this.base}:fenfu:dates`;
  }

  // --- Credit quotas (src/quota/) ---

  /**
   * Hash of a user's credit account (src/quota/credit-account.ts owns its fields): channel, quota, openedAt,
   * lastRun, owed, the charges counted per local day; credit_limit reads it in the call that decides.
   */
  account(userId: string): string {
    return `${this.base}:u:${userTag(userId)}:acct`;
  }

  /** Hash of a user's refunds: chargeId → fen refunded so far (src/quota/applyRefund-6.lua). */
  refunds(userId: string): string {
    return `${this.base}:u:${userTag(userId)}:refunds`;
  }

  /** Hash of credit totals over every account: owed (fen), the gauge riskmon_credit_outstanding_fen. */
  get creditTotals(): string {
    return `${this.base}:credit:totals`;
  }

  /** List of a user's calibration audit records, newest first (JSON). */
  quotaAudit(userId: string): string {
    return `${this.base}:u:${userTag(userId)}:quota:audit`;
  }

  /** Sorted set of repayments (score: paidAt ms). */
  repayments(userId: string): string {
    return `${this.base}:u:${userTag(userId)}:repay`;
  }

  /** Sorted set of asset snapshots (score: occurredAt ms). */
  assetSnapshots(userId: string): string {
    return `${this.base}:u:${userTag(userId)}:assets`;
  }

  /** Sorted set of social snapshots (score: occurredAt ms). */
  socialSnapshots(userId: string): string {
    return `${this.base}:u:${userTag(userId)}:social`;
  }

  /** Every credit account: members userId, scores openedAt ms. */
  get accountIndex(): string {
    return `${this.base}:accounts`;
  }

  /** Marker of an applied non-charge event; its existence is the eventId dedupe (charges use `decision`). */
  appliedEvent(eventId: string): string {
    return `${this.base}:ev:${eventId}`;
  }

  /** Hash of one calibration run (run id = its date): state, counters. */
  calibrationRun(runId: string): string {
    return `${this.base}:cal:run:${runId}`;
  }

  /** The accounts of a run, fixed when it first starts (members userId, scores openedAt ms). */
  calibrationRunAccounts(runId: string): string {
    return `${this.base}:cal:run:${runId}:accounts`;
  }

  /** Chunk indexes of a run finished in its current attempt. */
  calibrationRunDone(runId: string): string {
    return `${this.base}:cal:run:${runId}:done`;
  }

  /** The latest run date started; runs for earlier dates are refused. */
  get calibrationLatest(): string {
    return `${this.base}:cal:latest`;
  }
}

/**
 * Every Redis key and queue name of one namespace, in one place. All keys start with `rm:<namespace>:`, so a
 * replay's namespace never touches live data.
 *
 * The layout is Redis Cluster's: every script touches the keys of one hash tag only (one slot). The unit is the
 * shard, `{s<n>}`: its risk queue, its users' state, their decisions and event markers, its settlement schedule,
 * ledgers and decision stream, and its copies of the lists. Global structures have tags of their own (`{lists}`,
 * `{rules}`, `{dl}`, `{cal}`, the claim buckets); what spans shards (settlement reports, calibration, totals) is
 * gathered shard by shard. The first `{…}` of a key is the tag, and ours comes before any id, so no id, whatever
 * its characters, moves state into another slot. A user's shard is `shardOf(userId, shards)`: changing the shard
 * count moves users, which `LAYOUT` guards (src/redis/layout.ts).
 */
import { shardOf } from '../pipeline/shards.ts';

/** The lists (src/lists/lists.ts), as their keys name them. */
export type ListName = 'merchant' | 'user' | 'card';

export const SETTLEMENT_QUEUE = 'settlement';
export const CALIBRATION_QUEUE = 'calibration';

export function riskQueueName(shard: number): string {
  return `risk-${shard}`;
}

/** The hash tag of a shard's keys. */
export function shardTag(shard: number): string {
  return `{s${shard}}`;
}

/**
 * A user's id inside its keys: `{<userId>}` with "%", "{" and "}" percent-encoded, one-to-one, so two users' keys
 * never coincide. Not a hash tag (the shard's comes first); ids without those characters are unchanged.
 */
export function userTag(userId: string): string {
  return `{${/[%{}]/.test(userId) ? userId.replace(/[%{}]/g, (c) => (c === '%' ? '%25' : c === '{' ? '%7B' : '%7D')) : userId}}`;
}

/** Claim keys are spread over this many hash tags (one script call per bucket and round on Redis Cluster). */
export const CLAIM_BUCKETS = 64;

export class Keys {
  readonly base: string;
  /** Every shard, 0 … shards − 1. */
  readonly shardIds: readonly number[];

  constructor(
    readonly namespace: string,
    readonly shards: number,
    /** Hashes a shard's charge records of one generation are spread over (retention.chargeRecordHashesPerShard). */
    readonly chargeRecordParts = 64,
  ) {
    if (!Number.isInteger(shards) || shards < 1) throw new RangeError(`shards must be a positive integer, got ${shards}`);
    if (!Number.isInteger(chargeRecordParts) || chargeRecordParts < 1) throw new RangeError(`chargeRecordParts must be a positive integer, got ${chargeRecordParts}`);
    this.base = `rm:${namespace}`;
    this.shardIds = Array.from({ length: shards }, (_, i) => i);
  }

  /** The shard of a user: its queue and the slot of all its keys. */
  shardOf(userId: string): number {
    return shardOf(userId, this.shards);
  }

  /** `rm:<ns>:{s<n>}`: the start of every key of shard `n`. */
  shardBase(shard: number): string {
    return `${this.base}:${shardTag(shard)}`;
  }

  private user(userId: string): string {
    return `${this.shardBase(this.shardOf(userId))}:u:${userTag(userId)}`;
  }

  /**
   * BullMQ `prefix` option of a queue (never ioredis keyPrefix): a risk queue's keys are in its shard's slot, the
   * settlement and calibration queues each in a slot of their own (BullMQ's scripts need one slot per queue).
   */
  queuePrefix(queueName: string): string {
    const risk = /^risk-(\d+)$/.exec(queueName);
    return risk ? `${this.shardBase(Number(risk[1]))}:q` : `${this.base}:{${queueName}}:q`;
  }

  /** Hash of the layout this namespace was written with: version, shards, recordParts (src/redis/layout.ts). */
  get layout(): string {
    return `${this.base}:{meta}:layout`;
  }

  /**
   * Hash of eventId claims (src/decisions/claims.ts) of one bucket (a hash tag), generation (a claim window) and part:
   * field the eventId's 53-bit hash → the digest of the first accepted event's content. Expires two windows after
   * its creation.
   */
  claimHash(bucket: number, generation: number, part: number): string {
    return `${this.base}:id:{${bucket}}:${generation}:${part}`;
  }

  /**
   * The whole decision of a charge of shard `shard` (its user's), JSON: what `decisions show` and the API read while
   * it is in Redis. The archiver deletes it once PostgreSQL holds it; without an archive it expires after
   * retention.decisionDays. Found by eventId alone with `DecisionStore`, which asks every shard. Nothing on the hot
   * path reads it (the charge's record in `charges` is its dedupe).
   */
  decision(shard: number, eventId: string): string {
    return `${this.shardBase(shard)}:dec:${eventId}`;
  }

  /**
   * Hash of charge records (src/decisions/charge-record.ts) of one shard, generation (7 local dates) and part:
   * eventId → its record; expires as a whole once its youngest record is past retention.decisionDays.
   */
  chargeRecords(shard: number, generation: number, part: number): string {
    return `${this.shardBase(shard)}:rec:${generation}:${part}`;
  }

  /**
   * Hash of a user's rule state: each rule's fields ("<date>" → fen not declined that local day and "<date>#n" →
   * their count: user-daily-cap.ts; "c:<cardToken>" → the card's recent charge times: same-card-burst.ts) and
   * "p" → date of the last prune (src/rules/rule-state.ts, evaluateCharges-n.lua).
   */
  ruleState(userId: string): string {
    return `${this.user(userId)}:rules`;
  }

  /**
   * Hash of the merchant admission list: merchantId → its entries, a JSON array (src/lists/lists.ts). The
   * rules script reads it in the same call that decides (merchant_blocklisted).
   */
  get merchantList(): string {
    return `${this.base}:{lists}:merchants`;
  }

  /** Stream of every change to the merchant list: who, when, what (src/lists/lists.ts). */
  get merchantListHistory(): string {
    return `${this.base}:{lists}:merchants:history`;
  }

  /** Hash of frozen users: userId → its entries, as the merchant list's (src/lists/lists.ts; user_frozen reads it). */
  get userList(): string {
    return `${this.base}:{lists}:users`;
  }

  /** Stream of every change to the user list (one stream per list: the change script takes a list and its history). */
  get userListHistory(): string {
    return `${this.base}:{lists}:users:history`;
  }

  /**
   * Hash of blocklisted cards: card token (the producer's keyed hash, never the number) → its entries, each with the
   * card's last four (src/lists/lists.ts; card_blocklisted reads it).
   */
  get cardList(): string {
    return `${this.base}:{lists}:cards`;
  }

  /** Stream of every change to the card list: records name the card by token and last four only. */
  get cardListHistory(): string {
    return `${this.base}:{lists}:cards:history`;
  }

  /** Hash of a list's versions: id → the history id of its last change (src/lists/changeList-3.lua). */
  listVersions(kind: ListName): string {
    return `${this.base}:{lists}:${kind}s:versions`;
  }

  /**
   * Shard `shard`'s copy of a list, which the rules script reads in the call that decides: entries as the list's,
   * kept equal to it by src/lists/lists.ts.
   */
  listCopy(shard: number, kind: ListName): string {
    return `${this.shardBase(shard)}:lists:${kind}s`;
  }

  /** Hash of the versions a shard's copy holds: id → the version copied (src/lists/copyListEntry-2.lua). */
  listCopyVersions(shard: number, kind: ListName): string {
    return `${this.shardBase(shard)}:lists:${kind}s:versions`;
  }

  /** Hash of the published rules versions: version number → its record, JSON (src/rules/published.ts). */
  get rulesVersions(): string {
    return `${this.base}:{rules}:versions`;
  }

  /** String: the published rules version the workers decide with (absent: their configuration file). */
  get rulesLive(): string {
    return `${this.base}:{rules}:live`;
  }

  /** Stream of every publish and rollback: who, when, which version, why. */
  get rulesHistory(): string {
    return `${this.base}:{rules}:history`;
  }

  /** Stream of every new decision of a shard, for downstream consumers. */
  decisionStream(shard: number): string {
    return `${this.shardBase(shard)}:decisions`;
  }

  /** Hash of inputs the producers refused, by reason: a running count (riskmon_producer_rejected_events). */
  get producerRejections(): string {
    return `${this.base}:{dl}:producer:rejected`;
  }

  /** Stream of rejected events with their reasons. */
  get deadLetter(): string {
    return `${this.base}:{dl}:deadletter`;
  }

  /** Sorted set of the dead-letter sources already recorded (a redelivery is not recorded twice), capped like the stream. */
  get deadLetterSources(): string {
    return `${this.base}:{dl}:deadletter:seen`;
  }

  /** Sorted set of transactions awaiting settlement (members: eventId, scores: settleAt ms). */
  settlementDue(shard: number): string {
    return `${this.shardBase(shard)}:settle:due`;
  }

  /** Hash of running settlement totals: scheduled/held count and amount. */
  settlementStats(shard: number): string {
    return `${this.shardBase(shard)}:settle:stats`;
  }

  /**
   * Hash of what a release needs of each scheduled transaction, until it is paid: eventId → "merchant\tamount\tkind"
   * (kind "scheduled" or "held"), written with its due entry by the rules script and deleted when it settles.
   */
  settlementInfo(shard: number): string {
    return `${this.shardBase(shard)}:settle:info`;
  }

  /** Fenfu ledger of one settlement date: "<merchantId>\tcount" and "<merchantId>\tamount", kept apart from all else. */
  ledger(shard: number, settleDate: string): string {
    return `${this.shardBase(shard)}:fenfu:ledger:${settleDate}`;
  }

  /**
   * Stream of the shard's settlements as they are paid (eventId, ledger date, instant): the archive's source of
   * each transaction's settlement (fenfu.settlements), trimmed below what it has archived.
   */
  settlementLog(shard: number): string {
    return `${this.shardBase(shard)}:fenfu:settlements`;
  }

  /** Hash of the gross a shard settled into merchants' ledgers on dates of one month (YYYY-MM): merchantId → fen. */
  merchantVolume(shard: number, month: string): string {
    return `${this.shardBase(shard)}:fenfu:volume:${month}`;
  }

  /**
   * Hash of the fee tier of each merchant for settlement dates in `month` (YYYY-MM), from its volume in the month
   * before, over every shard (src/settlement/fees.ts): merchantId → tier; the field "\tcomputed" marks it complete.
   */
  feeTiers(month: string): string {
    return `${this.base}:{fees}:tiers:${month}`;
  }

  /**
   * Settlement dates reconciled (YYYY-MM-DD, src/settlement/reconciliation.ts) and months whose volume the next
   * month's fee tiers came from (YYYY-MM): nothing more is paid into them.
   */
  closedLedgerDates(shard: number): string {
    return `${this.shardBase(shard)}:fenfu:closed`;
  }

  /** Settlement dates that have a ledger. */
  ledgerDates(shard: number): string {
    return `${this.shardBase(shard)}:fenfu:dates`;
  }

  // --- Review cases (src/cases/) ---

  /**
   * Hash of a shard's cases (src/cases/case-queue.ts owns the record): case id → the case, JSON. A review decision's
   * case has the charge's eventId, a complaint's the complaint's. Kept until closed and archived.
   */
  cases(shard: number): string {
    return `${this.shardBase(shard)}:cases`;
  }

  /** Hash of the open case of each charge that has one: chargeId → case id (a settlement run reads it). */
  caseOfCharge(shard: number): string {
    return `${this.shardBase(shard)}:cases:bycharge`;
  }

  /** Sorted set of open cases nobody holds: case id → its deadline, ms (the next analyst takes the first). */
  caseQueue(shard: number): string {
    return `${this.shardBase(shard)}:cases:queue`;
  }

  /** Sorted set of open cases an analyst holds: case id → when the lock expires, ms. */
  caseLocks(shard: number): string {
    return `${this.shardBase(shard)}:cases:locks`;
  }

  /** Sorted set of releases waiting for a supervisor's approval: case id → when the release was asked, ms. */
  caseApprovals(shard: number): string {
    return `${this.shardBase(shard)}:cases:approvals`;
  }

  /** Sorted set of closed cases not yet archived: case id → when it closed, ms. */
  closedCases(shard: number): string {
    return `${this.shardBase(shard)}:cases:closed`;
  }

  /**
   * Stream of every case action (opened, taken, released, approved, cancelled, auto-released, extended, …) with the
   * case after it: the audit trail, archived into fenfu.case_actions; payment systems read cancellations from it.
   */
  caseLog(shard: number): string {
    return `${this.shardBase(shard)}:cases:log`;
  }

  // --- Credit quotas (src/quota/) ---

  /**
   * Hash of a user's credit account (src/quota/credit-account.ts owns its fields): channel, quota, openedAt,
   * lastRun, owed, the charges counted per local day; credit_limit reads it in the call that decides.
   */
  account(userId: string): string {
    return `${this.user(userId)}:acct`;
  }

  /** Hash of a user's refunds: chargeId → fen refunded so far (src/quota/applyRefund-n.lua). */
  refunds(userId: string): string {
    return `${this.user(userId)}:refunds`;
  }

  /** Hash of credit totals over every account: owed (fen), the gauge riskmon_credit_outstanding_fen. */
  creditTotals(shard: number): string {
    return `${this.shardBase(shard)}:credit:totals`;
  }

  /** List of a user's calibration audit records, newest first (JSON). */
  quotaAudit(userId: string): string {
    return `${this.user(userId)}:quota:audit`;
  }

  /** Sorted set of repayments (score: paidAt ms). */
  repayments(userId: string): string {
    return `${this.user(userId)}:repay`;
  }

  /** Sorted set of asset snapshots (score: occurredAt ms). */
  assetSnapshots(userId: string): string {
    return `${this.user(userId)}:assets`;
  }

  /** Sorted set of social snapshots (score: occurredAt ms). */
  socialSnapshots(userId: string): string {
    return `${this.user(userId)}:social`;
  }

  /** Every credit account: members userId, scores openedAt ms. */
  accountIndex(shard: number): string {
    return `${this.shardBase(shard)}:accounts`;
  }

  /** Marker of an applied non-charge event; its existence is the eventId dedupe (charges use `decision`). */
  appliedEvent(shard: number, eventId: string): string {
    return `${this.shardBase(shard)}:ev:${eventId}`;
  }

  /** Hash of one calibration run (run id = its date): state, chunks; the counters are per shard. */
  calibrationRun(runId: string): string {
    return `${this.base}:{cal}:run:${runId}`;
  }

  /** Hash of a run's counters over one shard's accounts (applyCalibration counts where it writes). */
  calibrationRunCounts(shard: number, runId: string): string {
    return `${this.shardBase(shard)}:cal:run:${runId}`;
  }

  /** A shard's accounts of a run, fixed when the run first starts (members userId, scores openedAt ms). */
  calibrationRunAccounts(shard: number, runId: string): string {
    return `${this.shardBase(shard)}:cal:run:${runId}:accounts`;
  }

  /** Chunk indexes of a run finished in its current attempt. */
  calibrationRunDone(runId: string): string {
    return `${this.base}:{cal}:run:${runId}:done`;
  }

  /** The latest run date started; runs for earlier dates are refused. */
  get calibrationLatest(): string {
    return `${this.base}:{cal}:latest`;
  }
}

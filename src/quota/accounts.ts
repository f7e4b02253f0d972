/**
 * Reads credit accounts and the activity the calibration needs from Redis, many accounts per round trip, and
 * shows one account with its calibration history.
 */
import { SlotPipeline, type RedisClient } from '../redis/client.ts';
import type { Keys } from '../redis/keys.ts';
import type { Account, Activity, Calibrator, Channel, Factor, Late, Warning } from './calibration.ts';
import { availableCredit, parseCreditAccount } from './credit-account.ts';
import type { AssetMember, RepaymentMember, SocialMember } from './events.ts';

export class AccountNotFoundError extends Error {
  override name = 'AccountNotFoundError';
}

/** One audit record per account and run: what changed and why. */
export interface AuditRecord {
  runId: string;
  userId: string;
  before: number;
  after: number;
  factors: Factor[];
  warnings: Warning[];
  /** What it counted that came after the previous run (absent on records of earlier versions). */
  late?: Late;
}

export interface AccountView {
  userId: string;
  channel: Channel;
  /** Base quota, fen. */
  quota: number;
  /** Quota in force at the instant shown (base raised by a holiday uplift window), fen. */
  effectiveQuota: number;
  /** Outstanding: charges counted less repayments and refunds, fen. */
  outstanding: number;
  /** What a charge at that instant may spend: effective quota − outstanding, never below zero, fen. */
  available: number;
  /** The instant shown, ISO. */
  at: string;
  openedAt: string;
  lastRun: string | null;
  /** Oldest first. */
  history: Omit<AuditRecord, 'userId'>[];
}

export interface AccountWithActivity {
  account: Account;
  activity: Activity;
}

const COMMANDS_PER_ACCOUNT = 4;

export class QuotaAccounts {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  /** Accounts and activity of many users in one round trip; null where a user has no account. */
  async read(userIds: readonly string[]): Promise<(AccountWithActivity | null)[]> {
    if (userIds.length === 0) return [];
    const k = this.keys;
    const pipeline = new SlotPipeline(this.redis);
    for (const userId of userIds) {
      pipeline.add(k.account(userId), (p) =>
        p
          .hgetall(k.account(userId))
          .zrange(k.repayments(userId), 0, -1, 'WITHSCORES')
          .zrange(k.assetSnapshots(userId), 0, -1, 'WITHSCORES')
          .zrange(k.socialSnapshots(userId), 0, -1, 'WITHSCORES'),
      );
    }
    const replies = await pipeline.exec();
    return userIds.map((userId, i) => {
      const at = (j: number) => {
        const [err, value] = replies[i * COMMANDS_PER_ACCOUNT + j] ?? [new Error('missing reply'), null];
        if (err) throw err;
        return value;
      };
      const credit = parseCreditAccount(userId, at(0) as Record<string, string>);
      if (!credit) return null;
      const { chargesByDate, lateCharges, owed: _owed, ...account } = credit;
      return {
        account,
        activity: {
          chargesByDate,
          lateCharges,
          repayments: members<RepaymentMember>(at(1) as string[]).map(([[eventId, amount, onTime, , paidDown, lateFor], score]) => ({
            eventId,
            amount,
            onTime: onTime === 1,
            paidAtMs: score,
            // Recorded before repayments said what they paid down: the whole amount.
            paidDown: paidDown ?? amount,
            lateFor: lateFor || null,
          })),
          assets: members<AssetMember>(at(2) as string[]).map(([[eventId, balance, redeemed, lateFor], score]) => ({ eventId, balance, redeemed, atMs: score, lateFor: lateFor || null })),
          social: members<SocialMember>(at(3) as string[]).map(([[eventId, friendsAdded, blocked, lateFor], score]) => ({
            eventId,
            friendsAdded,
            momentsBlocked: blocked === 1,
            atMs: score,
            lateFor: lateFor || null,
          })),
        },
      };
    });
  }

  async show(userId: string, calibrator: Calibrator, atMs = Date.now()): Promise<AccountView> {
    const [[, acct], [, audit]] = ((await this.redis
      .multi()
      .hgetall(this.keys.account(userId))
      .lrange(this.keys.quotaAudit(userId), 0, -1)
      .exec()) ?? []) as [[unknown, Record<string, string>], [unknown, string[]]];
    const account = parseCreditAccount(userId, acct);
    if (!account) throw new AccountNotFoundError(`no credit account for user ${JSON.stringify(userId)}`);
    const effectiveQuota = calibrator.effectiveQuota(account.channel, account.quota, atMs);
    return {
      userId,
      channel: account.channel,
      quota: account.quota,
      effectiveQuota,
      outstanding: account.owed,
      available: availableCredit(effectiveQuota, account.owed),
      at: new Date(atMs).toISOString(),
      openedAt: acct.openedAtIso ?? new Date(account.openedAtMs).toISOString(),
      lastRun: account.lastRunId,
      history: audit
        .map((json) => JSON.parse(json) as AuditRecord)
        .reverse()
        .map(({ runId, before, after, factors, warnings, late }) => ({ runId, before, after, factors, warnings, ...(late ? { late } : {}) })),
    };
  }
}

function members<M>(flat: string[]): [M, number][] {
  const out: [M, number][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([JSON.parse(flat[i]!) as M, Number(flat[i + 1])]);
  return out;
}

/**
 * Reads credit accounts and the activity the calibration needs from Redis, many accounts per round trip, and
 * shows one account with its calibration history.
 */
import type { Redis } from 'ioredis';
import type { Keys } from '../redis/keys.ts';
import type { Account, Activity, Calibrator, Channel, Factor, Warning } from './calibration.ts';
import type { AssetMember, RepaymentMember, SocialMember } from './events.ts';
import { dayCounts } from '../rules/user-daily-cap.ts';

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
}

export interface AccountView {
  userId: string;
  channel: Channel;
  /** Base quota, fen. */
  quota: number;
  /** Quota in force now (base raised by a holiday uplift window), fen. */
  effectiveQuota: number;
  /** Oldest first. */
  history: Omit<AuditRecord, 'userId'>[];
}

export interface AccountWithActivity {
  account: Account;
  activity: Activity;
}

const COMMANDS_PER_ACCOUNT = 5;

export class QuotaAccounts {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** Accounts and activity of many users in one round trip; null where a user has no account. */
  async read(userIds: readonly string[]): Promise<(AccountWithActivity | null)[]> {
    if (userIds.length === 0) return [];
    const k = this.keys;
    const pipeline = this.redis.pipeline();
    for (const userId of userIds) {
      pipeline.hgetall(k.account(userId));
      pipeline.hgetall(k.ruleState(userId));
      pipeline.zrange(k.repayments(userId), 0, -1, 'WITHSCORES');
      pipeline.zrange(k.assetSnapshots(userId), 0, -1, 'WITHSCORES');
      pipeline.zrange(k.socialSnapshots(userId), 0, -1, 'WITHSCORES');
    }
    const replies = (await pipeline.exec()) ?? [];
    return userIds.map((userId, i) => {
      const at = (j: number) => {
        const [err, value] = replies[i * COMMANDS_PER_ACCOUNT + j] ?? [new Error('missing reply'), null];
        if (err) throw err;
        return value;
      };
      const account = parseAccount(userId, at(0) as Record<string, string>);
      if (!account) return null;
      return {
        account,
        activity: {
          chargesByDate: dayCounts(at(1) as Record<string, string>),
          repayments: members<RepaymentMember>(at(2) as string[]).map(([[eventId, amount, onTime], score]) => ({
            eventId,
            amount,
            onTime: onTime === 1,
            paidAtMs: score,
          })),
          assets: members<AssetMember>(at(3) as string[]).map(([[eventId, balance, redeemed], score]) => ({ eventId, balance, redeemed, atMs: score })),
          social: members<SocialMember>(at(4) as string[]).map(([[eventId, friendsAdded, blocked], score]) => ({
            eventId,
            friendsAdded,
            momentsBlocked: blocked === 1,
            atMs: score,
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
    const account = parseAccount(userId, acct);
    if (!account) throw new AccountNotFoundError(`no credit account for user ${JSON.stringify(userId)}`);
    return {
      userId,
      channel: account.channel,
      quota: account.quota,
      effectiveQuota: calibrator.effectiveQuota(account.channel, account.quota, atMs),
      history: audit
        .map((json) => JSON.parse(json) as AuditRecord)
        .reverse()
        .map(({ runId, before, after, factors, warnings }) => ({ runId, before, after, factors, warnings })),
    };
  }
}

function parseAccount(userId: string, h: Record<string, string>): Account | null {
  if (!h || h.quota === undefined) return null;
  return {
    userId,
    channel: h.channel as Channel,
    quota: Number(h.quota),
    openedAtMs: Number(h.openedAt),
    openDayBase: Number(h.openDayBase ?? 0),
    lastRunId: h.lastRun ?? null,
    lastRunAtMs: h.lastRunAt === undefined ? null : Number(h.lastRunAt),
  };
}


function members<M>(flat: string[]): [M, number][] {
  const out: [M, number][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([JSON.parse(flat[i]!) as M, Number(flat[i + 1])]);
  return out;
}

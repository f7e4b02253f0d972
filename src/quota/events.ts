/**
 * Handlers of the credit-account events (account_opened, repayment, asset_snapshot, social_snapshot, refund, complaint): each
 * event is applied atomically by one script, deduplicated by eventId, and answered "accepted" (or "rejected" with a
 * reason when the account's state refuses it: a second opening, a repayment without an account, a refund of more
 * than is left of its charge).
 */

import { chargeRecordSearch } from '../decisions/charge-record.ts';
import type { RiskmonConfig } from '../config.ts';
import type {
  AccountOpenedEvent,
  AssetSnapshotEvent,
  RefundEvent,
  RepaymentEvent,
  SocialSnapshotEvent,
} from '../events/schema.ts';
import { parseInstant } from '../events/instant.ts';
import type { RejectReason } from '../pipeline/reject-reasons.ts';
import type { EventHandler } from '../pipeline/risk-processor.ts';
import type { Keys } from '../redis/keys.ts';
import { defineScript, loadScript } from '../redis/scripts.ts';
import type { ZoneCalendar } from '../time/calendar.ts';
import type { RedisClient } from '../redis/client.ts';

export const openAccountScript = loadScript(new URL('./openAccount-3.lua', import.meta.url));
export const recordActivityScript = loadScript(new URL('./recordActivity-4.lua', import.meta.url));
export const applyRefundScript = loadScript(new URL('./applyRefund-n.lua', import.meta.url));

export interface QuotaHandlerDeps {
  redis: RedisClient;
  config: RiskmonConfig;
  keys: Keys;
  calendar: ZoneCalendar;
}

export interface QuotaHandlers {
  account_opened: EventHandler<AccountOpenedEvent>;
  repayment: EventHandler<RepaymentEvent>;
  asset_snapshot: EventHandler<AssetSnapshotEvent>;
  social_snapshot: EventHandler<SocialSnapshotEvent>;
  refund: EventHandler<RefundEvent>;
}

/**
 * Members of the activity sets: JSON arrays that start with the eventId (unique, and ties sort by it). The script
 * appends to a repayment what it paid down and the run it is late for ("" when not late), and to a late snapshot
 * that run (recordActivity-4.lua).
 */
export type RepaymentMember = [eventId: string, amount: number, onTime: 0 | 1, dueAtMs: number, paidDown?: number, lateFor?: string];
export type AssetMember = [eventId: string, balance: number, redeemed: number, lateFor?: string];
export type SocialMember = [eventId: string, friendsAdded: number, momentsBlocked: 0 | 1, lateFor?: string];

/**
 * How long a user's refunds hash lives after its last write, s: as long as a charge it names can still be found, so
 * no refund (or cancel) is ever weighed against a charge whose earlier refunds were forgotten. A charge's record
 * lives until the youngest record of its hash (a week of local dates) is retention.decisionDays old: up to
 * decisionDays + 7 days after the charge's date, and the refund is later than the charge.
 */
export function refundsTtl(config: Pick<RiskmonConfig, 'retention'>): number {
  return (config.retention.decisionDays + 8) * 86_400;
}

function instantMs(text: string): number {
  const r = parseInstant(text);
  // The schema validated the field already; this cannot fail for a parsed event.
  if (!r.ok) throw new Error(`invalid instant ${text}: ${r.reason}`);
  return r.ms;
}

function interpretReply(reply: unknown, eventId: string) {
  const [code, reason, label] = reply as [number, string?, string?];
  if (code === 2) {
    return {
      result: { eventId, outcome: 'rejected' as const, error: reason ?? 'rejected' },
      isNew: false,
      rejectReason: (label ?? 'conflict') as RejectReason,
    };
  }
  return { result: { eventId, outcome: 'accepted' as const }, isNew: code === 1 };
}

export function quotaHandlers(deps: QuotaHandlerDeps): QuotaHandlers {
  const { redis, config, keys, calendar } = deps;
  const openAccount = defineScript(redis, openAccountScript);
  const recordActivity = defineScript(redis, recordActivityScript);
  const markerTtl = config.retention.decisionDays * 86_400;
  const activityTtl = config.calibration.activityRetentionDays * 86_400;

  const applyRefund = defineScript(redis, applyRefundScript);
  const activity = <E extends RepaymentEvent | AssetSnapshotEvent | SocialSnapshotEvent>(
    key: (userId: string) => string,
    scoreAndMember: (event: E, occurredAtMs: number) => [number, string, unknown[]],
  ): EventHandler<E> => ({
    enqueue(pipeline, event, occurredAtMs) {
      const [score, timeText, member] = scoreAndMember(event, occurredAtMs);
      const shard = keys.shardOf(event.userId);
      recordActivity(
        pipeline,
        [key(event.userId), keys.account(event.userId), keys.appliedEvent(shard, event.eventId), keys.creditTotals(shard)],
        [event.eventId, event.type, score, JSON.stringify(member), markerTtl, activityTtl, event.type === 'repayment' ? (event as RepaymentEvent).amount : 0, event.userId, timeText],
      );
    },
    interpret: (reply, event) => interpretReply(reply, event.eventId),
  });

  return {
    account_opened: {
      enqueue(pipeline, event, occurredAtMs) {
        const band = config.calibration.bands[event.channel];
        const shard = keys.shardOf(event.userId);
        openAccount(
          pipeline,
          [keys.account(event.userId), keys.accountIndex(shard), keys.appliedEvent(shard, event.eventId)],
          [
            event.eventId,
            event.userId,
            event.channel,
            event.quota,
            occurredAtMs,
            event.occurredAt,
            calendar.local(occurredAtMs).date,
            band.minFen,
            band.maxFen,
            markerTtl,
          ],
        );
      },
      interpret: (reply, event) => interpretReply(reply, event.eventId),
    },
    // A repayment belongs to the period containing paidAt, so paidAt is its score.
    repayment: activity<RepaymentEvent>(keys.repayments.bind(keys), (e) => {
      const paidAt = instantMs(e.paidAt);
      const dueAt = instantMs(e.dueAt);
      const member: RepaymentMember = [e.eventId, e.amount, paidAt <= dueAt ? 1 : 0, dueAt];
      return [paidAt, e.paidAt, member];
    }),
    asset_snapshot: activity<AssetSnapshotEvent>(keys.assetSnapshots.bind(keys), (e, at) => {
      const member: AssetMember = [e.eventId, e.balance, e.redeemed];
      return [at, e.occurredAt, member];
    }),
    social_snapshot: activity<SocialSnapshotEvent>(keys.socialSnapshots.bind(keys), (e, at) => {
      const member: SocialMember = [e.eventId, e.friendsAdded, e.momentsBlocked ? 1 : 0];
      return [at, e.occurredAt, member];
    }),
    refund: {
      enqueue(pipeline, event, occurredAtMs) {
        const shard = keys.shardOf(event.userId);
        const { decisionDays } = config.retention;
        const search = chargeRecordSearch(keys, event.userId, event.chargeId, calendar.local(occurredAtMs).date, decisionDays);
        applyRefund(
          pipeline,
          [
            keys.refunds(event.userId),
            keys.account(event.userId),
            keys.appliedEvent(shard, event.eventId),
            keys.creditTotals(shard),
            keys.settlementDue(shard),
            keys.settlementInfo(shard),
            keys.settlementStats(shard),
            keys.cases(shard),
            keys.caseOfCharge(shard),
            keys.caseLog(shard),
            ...search.keys,
          ],
          [event.eventId, event.userId, event.chargeId, event.amount, markerTtl, refundsTtl(config), decisionDays, search.oldest, occurredAtMs, config.retention.decisionStreamMaxLen, ...search.dates],
        );
      },
      interpret: (reply, event) => interpretReply(reply, event.eventId),
    },
  };
}

/**
 * Handlers of the credit-account events (account_opened, repayment, asset_snapshot, social_snapshot): each event is
 * applied atomically by one script, deduplicated by eventId, and answered "accepted" (or "rejected" with a reason
 * when the account's state refuses it, e.g. a second opening).
 */
import type { Redis } from 'ioredis';
import type { RiskmonConfig } from '../config.ts';
import type {
  AccountOpenedEvent,
  AssetSnapshotEvent,
  RepaymentEvent,
  SocialSnapshotEvent,
} from '../events/schema.ts';
import { parseInstant } from '../events/instant.ts';
import type { RejectReason } from '../pipeline/reject-reasons.ts';
import type { EventHandler } from '../pipeline/risk-processor.ts';
import type { Keys } from '../redis/keys.ts';
import { defineScript, loadScript } from '../redis/scripts.ts';
import { dayCountField } from '../rules/user-daily-cap.ts';
import type { ZoneCalendar } from '../time/calendar.ts';

export const openAccountScript = loadScript(new URL('./openAccount-5.lua', import.meta.url));
export const recordActivityScript = loadScript(new URL('./recordActivity-3.lua', import.meta.url));

export interface QuotaHandlerDeps {
  redis: Redis;
  config: RiskmonConfig;
  keys: Keys;
  calendar: ZoneCalendar;
}

export interface QuotaHandlers {
  account_opened: EventHandler<AccountOpenedEvent>;
  repayment: EventHandler<RepaymentEvent>;
  asset_snapshot: EventHandler<AssetSnapshotEvent>;
  social_snapshot: EventHandler<SocialSnapshotEvent>;
}

/** Members of the activity sets: JSON arrays that start with the eventId (unique, and ties sort by it). */
export type RepaymentMember = [eventId: string, amount: number, onTime: 0 | 1, dueAtMs: number];
export type AssetMember = [eventId: string, balance: number, redeemed: number];
export type SocialMember = [eventId: string, friendsAdded: number, momentsBlocked: 0 | 1];

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

  const activity = <E extends RepaymentEvent | AssetSnapshotEvent | SocialSnapshotEvent>(
    key: (userId: string) => string,
    scoreAndMember: (event: E, occurredAtMs: number) => [number, unknown[]],
  ): EventHandler<E> => ({
    enqueue(pipeline, event, occurredAtMs) {
      const [score, member] = scoreAndMember(event, occurredAtMs);
      recordActivity(
        pipeline,
        [key(event.userId), keys.appliedEvent(event.eventId), keys.decision(event.eventId)],
        [event.eventId, event.type, score, JSON.stringify(member), markerTtl, activityTtl],
      );
    },
    interpret: (reply, event) => interpretReply(reply, event.eventId),
  });

  return {
    account_opened: {
      enqueue(pipeline, event, occurredAtMs) {
        const band = config.calibration.bands[event.channel];
        openAccount(
          pipeline,
          [
            keys.account(event.userId),
            keys.ruleState(event.userId),
            keys.accountIndex,
            keys.appliedEvent(event.eventId),
            keys.decision(event.eventId),
          ],
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
            dayCountField(calendar.local(occurredAtMs).date),
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
      return [paidAt, member];
    }),
    asset_snapshot: activity<AssetSnapshotEvent>(keys.assetSnapshots.bind(keys), (e, at) => {
      const member: AssetMember = [e.eventId, e.balance, e.redeemed];
      return [at, member];
    }),
    social_snapshot: activity<SocialSnapshotEvent>(keys.socialSnapshots.bind(keys), (e, at) => {
      const member: SocialMember = [e.eventId, e.friendsAdded, e.momentsBlocked ? 1 : 0];
      return [at, member];
    }),
  };
}

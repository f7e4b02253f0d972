/**
 * Complaints (seed 002, 建立投诉订单快速处理通道) through the event pipeline: a complaint freezes its charge's
 * settlement when it is not yet paid and opens (or freezes) the charge's review case, so a person decides the money;
 * the archive marks the charge disputed (src/archive/archiver.ts), so its records outlive normal retention. Applied
 * once per eventId in the user's shard (fileComplaint-n.lua); rejected, with its reason, for a charge the user does
 * not have, one decided longer ago than the retention, or one declined.
 */
import { chargeRecordSearch } from '../decisions/charge-record.ts';
import type { RiskmonConfig } from '../config.ts';
import type { ComplaintEvent } from '../events/schema.ts';
import type { RejectReason } from '../pipeline/reject-reasons.ts';
import type { EventHandler } from '../pipeline/risk-processor.ts';
import type { RedisClient } from '../redis/client.ts';
import type { Keys } from '../redis/keys.ts';
import { defineScript, loadScript } from '../redis/scripts.ts';
import type { ZoneCalendar } from '../time/calendar.ts';

export const fileComplaintScript = loadScript(new URL('./fileComplaint-n.lua', import.meta.url));

export function complaintHandler(deps: { redis: RedisClient; config: RiskmonConfig; keys: Keys; calendar: ZoneCalendar }): EventHandler<ComplaintEvent> {
  const { redis, config, keys, calendar } = deps;
  const fileComplaint = defineScript(redis, fileComplaintScript);
  const { decisionDays } = config.retention;
  return {
    enqueue(pipeline, event, occurredAtMs, nowMs) {
      // As a refund looks for its charge.
      const shard = keys.shardOf(event.userId);
      const search = chargeRecordSearch(keys, event.userId, event.chargeId, calendar.local(occurredAtMs).date, decisionDays);
      fileComplaint(
        pipeline,
        [
          keys.appliedEvent(shard, event.eventId),
          keys.cases(shard),
          keys.caseOfCharge(shard),
          keys.caseQueue(shard),
          keys.caseLocks(shard),
          keys.caseApprovals(shard),
          keys.closedCases(shard),
          keys.caseLog(shard),
          keys.settlementDue(shard),
          keys.settlementInfo(shard),
          keys.refunds(event.userId),
          ...search.keys,
        ],
        [
          event.eventId,
          event.userId,
          event.chargeId,
          event.reason,
          occurredAtMs,
          nowMs,
          decisionDays * 86_400,
          decisionDays,
          search.oldest,
          config.settlement.holdHours * 3_600_000,
          config.retention.decisionStreamMaxLen,
          ...search.dates,
        ],
      );
    },
    interpret(reply, event) {
      const [code, reason, label] = reply as [number, string?, string?];
      if (code === 2) return { result: { eventId: event.eventId, outcome: 'rejected', error: reason ?? 'rejected' }, isNew: false, rejectReason: (label ?? 'conflict') as RejectReason };
      return { result: { eventId: event.eventId, outcome: 'accepted' }, isNew: code === 1 };
    },
  };
}

/**
 * Settlement: approved charges settle T+1 at 03:00 local, charges under review are held 48 hours longer
 * (both scheduled by the rules script into one due set, no job per transaction). A release run at instant X (the
 * worker's tick, or `npm run settlement -- release --now X`) moves everything due by X into the per-merchant Fenfu
 * ledger of X's local date (never the date of a past due score), exactly once per eventId, forever (contract v1.1).
 * Each shard keeps its own due set, ledgers and settled markers (its slot); a run releases every shard, and a report
 * adds the shards' ledgers up. The markers guard a charge, whose user (so shard) is part of it: a charge decided
 * again after its decision expired meets its marker in its user's shard. (An eventId reused by another user after
 * its claim expired is another charge, in another shard, and is paid.)
 */
import { SlotPipeline, type RedisClient } from '../redis/client.ts';
import type { ChainableCommander } from 'ioredis';
import { parseDecision, type Decision } from '../decisions/decision.ts';
import type { Keys } from '../redis/keys.ts';
import { defineScript, loadScript } from '../redis/scripts.ts';
import type { ZoneCalendar } from '../time/calendar.ts';

const releaseScript = loadScript(new URL('./releaseSettlement-8.lua', import.meta.url));

/** Why a due transaction was taken off the due set without being paid (label `reason` of `riskmon_settlements_refused_total`). */
export type SettlementRefusalReason = 'already_settled';
export const SETTLEMENT_REFUSAL_REASONS: readonly SettlementRefusalReason[] = ['already_settled'];

/** Instants a release may run at: the contract's event-time range, so no ledger date outside it can appear. */
const EARLIEST_RUN_MS = Date.UTC(2000, 0, 1);
const LATEST_RUN_MS = Date.UTC(2100, 0, 1);

export interface PendingSettlement {
  eventId: string;
  merchantId: string | null;
  amount: number | null;
  settleAt: string;
  /** "held" when the charge went to review, else "scheduled". */
  status: 'scheduled' | 'held' | 'unknown';
}

export interface MerchantSettlement {
  merchantId: string;
  count: number;
  amount: number;
}

export interface SettlementReport {
  date: string;
  merchants: MerchantSettlement[];
  totalCount: number;
  totalAmount: number;
}

export interface SettlementRefusal {
  eventId: string;
  reason: SettlementRefusalReason;
  /** The date the eventId was settled on before. */
  settledOn: string;
}

export interface ReleaseResult {
  /** The ledger date paid into: the local date of the run's instant. */
  date: string;
  settled: number;
  settledAmount: number;
  missingDecision: number;
  /** Due transactions refused (taken off the due set, nothing paid), with why. */
  refused: SettlementRefusal[];
}

export interface SettlementStats {
  scheduledCount: number;
  scheduledAmount: number;
  heldCount: number;
  heldAmount: number;
  settledCount: number;
  settledAmount: number;
}

export class SettlementLedger {
  private readonly release: ReturnType<typeof defineScript>;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly calendar: ZoneCalendar,
    /** Approximate cap of each shard's settlement log (retention.decisionStreamMaxLen). */
    private readonly logMaxLen = 1_000_000,
  ) {
    this.release = defineScript(redis, releaseScript);
  }

  /**
   * Settles every transaction due at or before `nowMs` into the ledger of `nowMs`'s local date, `batchSize` per round
   * trip. An eventId already settled (on any date) is refused and taken off the due set; see releaseSettlement-8.lua.
   */
  async releaseDue(nowMs: number, batchSize = 1_000): Promise<ReleaseResult> {
    if (!Number.isFinite(nowMs) || nowMs < EARLIEST_RUN_MS || nowMs >= LATEST_RUN_MS) {
      throw new RangeError(`a settlement run's instant must lie in [2000-01-01, 2100-01-01), got ${nowMs}`);
    }
    const date = this.calendar.local(nowMs).date;
    const parts = await Promise.all(this.keys.shardIds.map((shard) => this.releaseShard(shard, date, nowMs, batchSize)));
    return {
      date,
      settled: sum(parts.map((p) => p.settled)),
      settledAmount: sum(parts.map((p) => p.settledAmount)),
      missingDecision: sum(parts.map((p) => p.missingDecision)),
      refused: parts.flatMap((p) => p.refused),
    };
  }

  private async releaseShard(shard: number, date: string, nowMs: number, batchSize: number): Promise<ReleaseResult> {
    const k = this.keys;
    const total: ReleaseResult = { date, settled: 0, settledAmount: 0, missingDecision: 0, refused: [] };
    let offset = 0;
    for (;;) {
      const ids = await this.redis.zrangebyscore(k.settlementDue(shard), '-inf', nowMs, 'LIMIT', offset, batchSize);
      if (ids.length === 0) return total;
      const decisions = await this.decisions(shard, ids);
      // One shard, one slot: a plain pipeline.
      const pipeline = this.redis.pipeline();
      const calls: { eventId: string; decision: Decision }[] = [];
      ids.forEach((eventId, i) => {
        const d = decisions[i];
        if (!d) return;
        this.release(
          pipeline,
          [k.settlementDue(shard), k.ledgerEntries(shard, date), k.ledger(shard, date), k.ledgerDates(shard), k.settlementStats(shard), k.decision(shard, eventId), k.settledMarkers(shard), k.settlementLog(shard)],
          [eventId, d.merchantId, d.amount, d.outcome === 'review' ? 'held' : 'scheduled', date, nowMs, this.logMaxLen],
        );
        calls.push({ eventId, decision: d });
      });
      const missing = ids.length - calls.length;
      const replies = (await pipeline.exec()) ?? [];
      replies.forEach(([err, reply], i) => {
        if (err) throw err;
        if (reply === 1) {
          total.settled++;
          total.settledAmount += calls[i]!.decision.amount;
        } else if (Array.isArray(reply) && reply[0] === -2) {
          total.refused.push({ eventId: calls[i]!.eventId, reason: 'already_settled', settledOn: String(reply[1]) });
        }
      });
      // Transactions whose decision expired stay in the due set (they cannot be settled blind); skip past them.
      total.missingDecision += missing;
      offset += missing;
    }
  }

  /**
   * Upgrade step (once, idempotent, safe beside running workers): writes the settled marker of every transaction in
   * the per-date ledger entries of releases made before the markers existed (HSETNX: a marker already there wins).
   * Reports the eventIds found settled on more than one date (paid twice before this guard), at most 100 named.
   */
  async backfillSettledMarkers(batchSize = 1_000): Promise<{ dates: number; entries: number; markersWritten: number; settledTwice: number; settledTwiceShown: string[] }> {
    const k = this.keys;
    const out = { dates: 0, entries: 0, markersWritten: 0, settledTwice: 0, settledTwiceShown: [] as string[] };
    const allDates = new Set<string>();
    for (const shard of k.shardIds) {
      const dates = (await this.redis.smembers(k.ledgerDates(shard))).sort();
      for (const date of dates) {
        allDates.add(date);
        let cursor = '0';
        do {
          const [next, flat] = await this.redis.hscan(k.ledgerEntries(shard, date), cursor, 'COUNT', batchSize);
          cursor = next;
          const ids = flat.filter((_, i) => i % 2 === 0);
          if (ids.length === 0) continue;
          const pipeline = this.redis.pipeline();
          for (const id of ids) pipeline.hsetnx(k.settledMarkers(shard), id, date);
          for (const id of ids) pipeline.hget(k.settledMarkers(shard), id);
          const replies = (await pipeline.exec()) ?? [];
          ids.forEach((id, i) => {
            const [err, wrote] = replies[i]!;
            const [err2, markedOn] = replies[ids.length + i]!;
            if (err || err2) throw err ?? err2;
            out.entries++;
            if (wrote === 1) out.markersWritten++;
            else if (markedOn !== date) {
              out.settledTwice++;
              if (out.settledTwiceShown.length < 100) out.settledTwiceShown.push(id);
            }
          });
        } while (cursor !== '0');
      }
    }
    out.dates = allDates.size;
    return out;
  }

  /** The `limit` transactions due first, over every shard. */
  async pending(limit = 1_000): Promise<PendingSettlement[]> {
    const perShard = await Promise.all(
      this.keys.shardIds.map(async (shard) => {
        const due = await this.redis.zrange(this.keys.settlementDue(shard), 0, limit - 1, 'WITHSCORES');
        const ids = due.filter((_, i) => i % 2 === 0);
        const decisions = await this.decisions(shard, ids);
        return ids.map((eventId, i) => ({ eventId, score: Number(due[i * 2 + 1]), decision: decisions[i] }));
      }),
    );
    const first = perShard
      .flat()
      .sort((a, b) => a.score - b.score || (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0))
      .slice(0, limit);
    return first.map(({ eventId, score, decision: d }) => ({
      eventId,
      merchantId: d?.merchantId ?? null,
      amount: d?.amount ?? null,
      settleAt: new Date(score).toISOString(),
      status: d ? (d.outcome === 'review' ? 'held' : 'scheduled') : 'unknown',
    }));
  }

  async report(date: string): Promise<SettlementReport> {
    const byMerchant = new Map<string, MerchantSettlement>();
    for (const fields of await this.perShard((shard, p) => p.hgetall(this.keys.ledger(shard, date)))) {
      for (const [field, value] of Object.entries(fields as Record<string, string>)) {
        const tab = field.lastIndexOf('\t');
        const merchantId = field.slice(0, tab);
        const m = byMerchant.get(merchantId) ?? { merchantId, count: 0, amount: 0 };
        if (field.slice(tab + 1) === 'count') m.count += Number(value);
        else m.amount += Number(value);
        byMerchant.set(merchantId, m);
      }
    }
    const merchants = [...byMerchant.values()].sort((a, b) => (a.merchantId < b.merchantId ? -1 : a.merchantId > b.merchantId ? 1 : 0));
    return {
      date,
      merchants,
      totalCount: merchants.reduce((s, m) => s + m.count, 0),
      totalAmount: merchants.reduce((s, m) => s + m.amount, 0),
    };
  }

  async stats(): Promise<SettlementStats> {
    const shards = (await this.perShard((shard, p) => p.hgetall(this.keys.settlementStats(shard)))) as Record<string, string>[];
    const n = (k: string) => sum(shards.map((h) => Number(h[k] ?? 0)));
    return {
      scheduledCount: n('scheduledCount'),
      scheduledAmount: n('scheduledAmount'),
      heldCount: n('heldCount'),
      heldAmount: n('heldAmount'),
      settledCount: n('settledCount'),
      settledAmount: n('settledAmount'),
    };
  }

  /** One read of each shard (queued by `read` on the shard's slot), the replies in shard order. */
  private async perShard(read: (shard: number, pipeline: ChainableCommander) => unknown): Promise<unknown[]> {
    const pipeline = new SlotPipeline(this.redis);
    for (const shard of this.keys.shardIds) pipeline.add(this.keys.settlementStats(shard), (p) => read(shard, p));
    return (await pipeline.exec()).map(([err, reply]) => {
      if (err) throw err;
      return reply;
    });
  }

  private async decisions(shard: number, eventIds: string[]): Promise<(Decision | null)[]> {
    if (eventIds.length === 0) return [];
    const raw = await this.redis.mget(eventIds.map((id) => this.keys.decision(shard, id)));
    return raw.map((r) => (r ? parseDecision(r) : null));
  }
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

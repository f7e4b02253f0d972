/**
 * Settlement: approved charges settle T+1 at 03:00 local, charges under review are held 48 hours longer
 * (both scheduled by the rules script into one due set, no job per transaction). A release run at instant X (the
 * worker's tick, or `npm run settlement -- release --now X`) moves everything due by X into the per-merchant Fenfu
 * ledger of X's local date (never the date of a past due score), exactly once per eventId (contract v1.1). The due
 * set holds eventIds; what a release needs of each (merchant, amount, kind) waits beside it in the settlement info
 * until it is paid, so a release never reads a decision (decisions leave Redis once archived). Each shard keeps its
 * own due set, info, ledgers and settlement log (its slot); a run releases every shard, and a report adds the
 * shards' ledgers up. Which transactions a ledger date paid is in the settlement log until the archive has it, then
 * in fenfu.settlements.
 */
import { SlotPipeline, type RedisClient } from '../redis/client.ts';
import type { ChainableCommander } from 'ioredis';
import type { Keys } from '../redis/keys.ts';
import { defineScript, loadScript } from '../redis/scripts.ts';
import { feesFor, tierOf, type FeeSchedule } from './fees.ts';
import type { ZoneCalendar } from '../time/calendar.ts';
import type { RiskmonConfig } from '../config.ts';

const releaseScript = loadScript(new URL('./releaseSettlement-15.lua', import.meta.url));

/** Instants a release may run at: the contract's event-time range, so no ledger date outside it can appear. */
const EARLIEST_RUN_MS = Date.UTC(2000, 0, 1);
const LATEST_RUN_MS = Date.UTC(2100, 0, 1);

export interface PendingSettlement {
  eventId: string;
  merchantId: string | null;
  amount: number | null;
  /** Null while its case holds it for a person (frozen, waiting for approval, or above the four-eyes amount). */
  settleAt: string | null;
  /** "held" when the charge went to review, "reversal" for a refund of a paid charge, else "scheduled". */
  status: InfoKind | 'unknown';
}

export interface MerchantSettlement {
  merchantId: string;
  /** Its fee tier on the date (from its volume in the month before). */
  tier: number;
  count: number;
  grossFen: number;
  baseFeeFen: number;
  techFeeFen: number;
  netFen: number;
}

export interface SettlementReport {
  date: string;
  merchants: MerchantSettlement[];
  totalCount: number;
  totalAmount: number;
}

export interface ReleaseResult {
  /** The ledger date paid into: the local date of the run's instant. */
  date: string;
  settled: number;
  settledAmount: number;
  /** Due transactions without their settlement info (left in place: none is paid blind). */
  missingInfo: number;
  /** What was paid, by fee tier and kind (nothing paid: absent), in tier order, charges first. */
  paid: PaidTotals[];
  /** The date is closed (reconciled): what is due waits for the next date's runs. */
  closed: boolean;
  /**
   * What open cases got at their deadline in this run (src/cases/): paid (and how long each had been open, s),
   * extended, or left for a person.
   */
  caseDeadlines: { autoReleased: number; extended: number; waiting: number; decisionSeconds: number[] };
}

/** Sums over the transactions of one fee tier and kind, fen (a reversal's figures are negative). */
export interface PaidTotals {
  tier: number;
  kind: 'charge' | 'reversal';
  count: number;
  grossFen: number;
  baseFeeFen: number;
  techFeeFen: number;
  netFen: number;
}

/** A merchant's month (SettlementLedger.merchantStatement), fen throughout. */
export interface MerchantStatement {
  merchantId: string;
  month: string;
  tier: number;
  /** The month's tiers are computed (its first release ran): else `tier` is what the month before gives so far. */
  tierComputed: boolean;
  previousMonthVolumeFen: number;
  /** Gross settled to it on the month's dates so far, reversals deducted: what next month's tier comes from. */
  volumeFen: number;
  paid: { count: number; grossFen: number; baseFeeFen: number; techFeeFen: number; netFen: number };
  days: { date: string; count: number; grossFen: number; baseFeeFen: number; techFeeFen: number; netFen: number }[];
  /** Due and not yet paid: T+1 charges, held ones, reversals to take back. */
  pending: { scheduledCount: number; scheduledFen: number; heldCount: number; heldFen: number; reversalCount: number; reversalFen: number };
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
    /** Merchant fees (settlement.fees). */
    private readonly fees: FeeSchedule,
    /** What an open case gets at its deadline (the cases section). */
    private readonly cases: RiskmonConfig['cases'],
    /** Approximate cap of each shard's settlement log (retention.decisionStreamMaxLen). */
    private readonly logMaxLen = 1_000_000,
  ) {
    this.release = defineScript(redis, releaseScript);
  }

  /**
   * Settles every transaction due at or before `nowMs` into the ledger of `nowMs`'s local date, `batchSize` per round
   * trip; see releaseSettlement-15.lua. A date once reconciled is closed: a run on it pays nothing (`closed`).
   */
  async releaseDue(nowMs: number, batchSize = 1_000): Promise<ReleaseResult> {
    if (!Number.isFinite(nowMs) || nowMs < EARLIEST_RUN_MS || nowMs >= LATEST_RUN_MS) {
      throw new RangeError(`a settlement run's instant must lie in [2000-01-01, 2100-01-01), got ${nowMs}`);
    }
    const date = this.calendar.local(nowMs).date;
    const month = date.slice(0, 7);
    if ((await this.redis.hexists(this.keys.feeTiers(nextMonth(month)), COMPUTED)) === 1) {
      throw new RangeError(
        `settlement date ${date} is in a closed month: the fee tiers of ${nextMonth(month)} were computed from its volume, so nothing more is paid into it`,
      );
    }
    if (await this.isClosed(date)) return { date, settled: 0, settledAmount: 0, missingInfo: 0, paid: [], closed: true, caseDeadlines: noCaseDeadlines() };
    const tiers = await this.tiers(month);
    const parts = await Promise.all(this.keys.shardIds.map((shard) => this.releaseShard(shard, date, nowMs, batchSize, tiers)));
    const paid: PaidTotals[] = [];
    for (const part of parts) for (const t of part.paid) addPaid(paid, t);
    return {
      date,
      paid,
      settled: sum(parts.map((p) => p.settled)),
      settledAmount: sum(parts.map((p) => p.settledAmount)),
      missingInfo: sum(parts.map((p) => p.missingInfo)),
      closed: parts.some((p) => p.closed),
      caseDeadlines: {
        autoReleased: sum(parts.map((p) => p.caseDeadlines.autoReleased)),
        extended: sum(parts.map((p) => p.caseDeadlines.extended)),
        waiting: sum(parts.map((p) => p.caseDeadlines.waiting)),
        decisionSeconds: parts.flatMap((p) => p.caseDeadlines.decisionSeconds),
      },
    };
  }

  private async releaseShard(shard: number, date: string, nowMs: number, batchSize: number, tiers: Map<string, number>): Promise<ReleaseResult> {
    const k = this.keys;
    const total: ReleaseResult = { date, settled: 0, settledAmount: 0, missingInfo: 0, paid: [], closed: false, caseDeadlines: noCaseDeadlines() };
    const keys = [
      k.settlementDue(shard),
      k.ledger(shard, date),
      k.ledgerDates(shard),
      k.settlementStats(shard),
      k.settlementInfo(shard),
      k.settlementLog(shard),
      k.merchantVolume(shard, date.slice(0, 7)),
      k.closedLedgerDates(shard),
      k.cases(shard),
      k.caseOfCharge(shard),
      k.caseQueue(shard),
      k.caseLocks(shard),
      k.caseApprovals(shard),
      k.closedCases(shard),
      k.caseLog(shard),
    ];
    const c = this.cases;
    const caseArgs = [c.onDeadline, c.extendHours * 3_600_000, c.maxExtendHours * 3_600_000, c.fourEyesAboveFen, this.logMaxLen];
    let offset = 0;
    for (;;) {
      const ids = await this.redis.zrangebyscore(k.settlementDue(shard), '-inf', nowMs, 'LIMIT', offset, batchSize);
      if (ids.length === 0) return total;
      const infos = await this.redis.hmget(k.settlementInfo(shard), ...ids);
      // One shard, one slot: a plain pipeline.
      const pipeline = this.redis.pipeline();
      const paying = ids.map((eventId, i) => {
        const text = infos[i] ?? '';
        const info = parseInfo(text);
        // Without its info the script leaves it (-1); the fees are then moot.
        const tier = info ? (tiers.get(info.merchantId) ?? 1) : 1;
        // A reversal gives back the fees of the refunded part, at the tier of the date it is paid on.
        const f = info ? feesFor(info.grossFen, tier, info.merchantId, this.fees) : { baseFeeFen: 0, techFeeFen: 0, netFen: 0 };
        this.release(pipeline, keys, [eventId, date, nowMs, this.logMaxLen, text, tier, f.baseFeeFen, f.techFeeFen, f.netFen, ...caseArgs]);
        return { tier, ...f };
      });
      const replies = (await pipeline.exec()) ?? [];
      for (const [i, [err, reply]] of replies.entries()) {
        if (err) throw err;
        if (Array.isArray(reply) && reply[0] === 1) {
          const gross = Number(reply[1]);
          total.settled++;
          total.settledAmount += gross;
          const p = paying[i]!;
          addPaid(total.paid, { tier: p.tier, kind: gross < 0 ? 'reversal' : 'charge', count: 1, grossFen: gross, baseFeeFen: p.baseFeeFen, techFeeFen: p.techFeeFen, netFen: p.netFen });
          const openedAtMs = Number(reply[2]);
          if (openedAtMs > 0) {
            total.caseDeadlines.autoReleased++;
            total.caseDeadlines.decisionSeconds.push(Math.max(0, (nowMs - openedAtMs) / 1_000));
          }
        } else if (Array.isArray(reply) && reply[0] === -4) {
          // Its case kept it: due later (extended, or when an analyst's lock expires) or at +inf (waiting for a
          // person), out of this run's range.
          total.caseDeadlines[reply[1] === 'extended' ? 'extended' : 'waiting']++;
        } else if (reply === -2) {
          // Closed while this run paid (the reconciliation began): the rest waits for the next date.
          total.closed = true;
        } else if (reply === -3) {
          // A refund changed it meanwhile: the next run pays what is left.
          offset++;
        } else if (reply === -1) {
          // Left in the due set (it cannot be settled blind): skip past it.
          total.missingInfo++;
          offset++;
        }
      }
      if (total.closed) return total;
    }
  }

  /**
   * Closes a settlement date (its reconciliation is being written): from the moment every shard has it, no release
   * pays into it, atomically in each release call. Idempotent.
   */
  async closeDate(date: string): Promise<void> {
    await this.close(date);
  }

  /** Closes a date (YYYY-MM-DD) or a whole month (YYYY-MM) in every shard: their release calls refuse it. */
  private async close(period: string): Promise<void> {
    const pipeline = new SlotPipeline(this.redis);
    for (const shard of this.keys.shardIds) pipeline.add(this.keys.closedLedgerDates(shard), (p) => p.sadd(this.keys.closedLedgerDates(shard), period));
    for (const [err] of await pipeline.exec()) if (err) throw err;
  }

  /** Whether any shard has `date` closed (closeDate writes them all). */
  async isClosed(date: string): Promise<boolean> {
    const pipeline = new SlotPipeline(this.redis);
    for (const shard of this.keys.shardIds) pipeline.add(this.keys.closedLedgerDates(shard), (p) => p.sismember(this.keys.closedLedgerDates(shard), date));
    return (await pipeline.exec()).some(([err, n]) => {
      if (err) throw err;
      return n === 1;
    });
  }

  /** The `limit` transactions due first, over every shard. */
  async pending(limit = 1_000): Promise<PendingSettlement[]> {
    const perShard = await Promise.all(
      this.keys.shardIds.map(async (shard) => {
        const due = await this.redis.zrange(this.keys.settlementDue(shard), 0, limit - 1, 'WITHSCORES');
        const ids = due.filter((_, i) => i % 2 === 0);
        const infos = ids.length ? await this.redis.hmget(this.keys.settlementInfo(shard), ...ids) : [];
        return ids.map((eventId, i) => ({ eventId, score: Number(due[i * 2 + 1]!.replace('inf', 'Infinity')), info: parseInfo(infos[i] ?? null) }));
      }),
    );
    const first = perShard
      .flat()
      .sort((a, b) => a.score - b.score || (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0))
      .slice(0, limit);
    return first.map(({ eventId, score, info }) => ({
      eventId,
      merchantId: info?.merchantId ?? null,
      amount: info?.amount ?? null,
      // +inf: held by its case until a person decides (src/cases/).
      settleAt: Number.isFinite(score) ? new Date(score).toISOString() : null,
      status: info?.kind ?? 'unknown',
    }));
  }

  /**
   * The fee tier of each merchant for settlement dates in `month`, from its volume over every shard in the month
   * before (computed at the first release of the month and kept: that month is closed then). A merchant without one
   * is in tier 1.
   */
  async tiers(month: string): Promise<Map<string, number>> {
    const key = this.keys.feeTiers(month);
    let table = await this.redis.hgetall(key);
    if (table[COMPUTED] === undefined) {
      // Closed first, then read: a payment into the month before either lands before the close (and is in the
      // volumes read) or is refused by its release call, so the tiers are computed from all the month paid.
      await this.close(previousMonth(month));
      const volumes = new Map<string, number>();
      for (const h of await this.perShard((shard, p) => p.hgetall(this.keys.merchantVolume(shard, previousMonth(month))))) {
        for (const [merchantId, fen] of Object.entries(h as Record<string, string>)) volumes.set(merchantId, (volumes.get(merchantId) ?? 0) + Number(fen));
      }
      const fields: string[] = [];
      for (const [merchantId, fen] of volumes) fields.push(merchantId, String(tierOf(fen, this.fees)));
      // One HSET: readers see the whole table or none of it; a second computer writes the same.
      await this.redis.hset(key, ...fields, COMPUTED, new Date().toISOString());
      table = await this.redis.hgetall(key);
    }
    return new Map(Object.entries(table).filter(([m]) => m !== COMPUTED).map(([m, t]) => [m, Number(t)]));
  }

  async report(date: string): Promise<SettlementReport> {
    const byMerchant = new Map<string, MerchantSettlement>();
    for (const fields of await this.perShard((shard, p) => p.hgetall(this.keys.ledger(shard, date)))) {
      for (const [field, value] of Object.entries(fields as Record<string, string>)) {
        const tab = field.lastIndexOf('\t');
        const merchantId = field.slice(0, tab);
        const m = byMerchant.get(merchantId) ?? { merchantId, tier: 1, count: 0, grossFen: 0, baseFeeFen: 0, techFeeFen: 0, netFen: 0 };
        const n = Number(value);
        switch (field.slice(tab + 1)) {
          case 'count': m.count += n; break;
          case 'amount': m.grossFen += n; break;
          case 'base': m.baseFeeFen += n; break;
          case 'tech': m.techFeeFen += n; break;
          case 'net': m.netFen += n; break;
          case 'tier': m.tier = n; break;
        }
        byMerchant.set(merchantId, m);
      }
    }
    const merchants = [...byMerchant.values()].sort((a, b) => (a.merchantId < b.merchantId ? -1 : a.merchantId > b.merchantId ? 1 : 0));
    return {
      date,
      merchants,
      totalCount: merchants.reduce((s, m) => s + m.count, 0),
      totalAmount: merchants.reduce((s, m) => s + m.grossFen, 0),
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
  /**
   * One merchant's month (YYYY-MM, settlement dates in it): its tier (as computed at the month's first release, or,
   * before that, what the month before's volume gives so far, read without closing anything), what was paid on each
   * date and in all, the volume, and what is pending or held for it now. Reads every shard's settlement info: an
   * operator's command, not a hot path.
   */
  async merchantStatement(merchantId: string, month: string): Promise<MerchantStatement> {
    const tiers = await this.redis.hgetall(this.keys.feeTiers(month));
    const computed = tiers[COMPUTED] !== undefined;
    const volumeOf = async (m: string) => sum(((await this.perShard((shard, p) => p.hget(this.keys.merchantVolume(shard, m), merchantId))) as (string | null)[]).map((v) => Number(v ?? 0)));
    const previousVolumeFen = await volumeOf(previousMonth(month));
    const tier = computed ? Number(tiers[merchantId] ?? 1) : tierOf(previousVolumeFen, this.fees);
    const dates = [...new Set((await this.perShard((shard, p) => p.smembers(this.keys.ledgerDates(shard)))).flat() as string[])].filter((d) => d.startsWith(`${month}-`)).sort();
    const fields = ['count', 'amount', 'base', 'tech', 'net'].map((f) => `${merchantId}\t${f}`);
    const days: MerchantStatement['days'] = [];
    for (const date of dates) {
      const rows = (await this.perShard((shard, p) => p.hmget(this.keys.ledger(shard, date), ...fields))) as (string | null)[][];
      const at = (i: number) => sum(rows.map((r) => Number(r[i] ?? 0)));
      if (rows.every((r) => r[0] === null)) continue;
      days.push({ date, count: at(0), grossFen: at(1), baseFeeFen: at(2), techFeeFen: at(3), netFen: at(4) });
    }
    const pending = { scheduledCount: 0, scheduledFen: 0, heldCount: 0, heldFen: 0, reversalCount: 0, reversalFen: 0 };
    for (const shard of this.keys.shardIds) {
      let cursor = '0';
      do {
        const [next, flat] = await this.redis.hscan(this.keys.settlementInfo(shard), cursor, 'COUNT', 1_000);
        cursor = next;
        for (let i = 1; i < flat.length; i += 2) {
          const info = parseInfo(flat[i]!);
          if (!info || info.merchantId !== merchantId) continue;
          pending[`${info.kind}Count`]++;
          pending[`${info.kind}Fen`] += info.amount;
        }
      } while (cursor !== '0');
    }
    const total = (f: keyof MerchantStatement['days'][number]) => sum(days.map((d) => d[f] as number));
    return {
      merchantId,
      month,
      tier,
      tierComputed: computed,
      previousMonthVolumeFen: previousVolumeFen,
      volumeFen: await volumeOf(month),
      paid: { count: total('count'), grossFen: total('grossFen'), baseFeeFen: total('baseFeeFen'), techFeeFen: total('techFeeFen'), netFen: total('netFen') },
      days,
      pending,
    };
  }

  private async perShard(read: (shard: number, pipeline: ChainableCommander) => unknown): Promise<unknown[]> {
    const pipeline = new SlotPipeline(this.redis);
    for (const shard of this.keys.shardIds) pipeline.add(this.keys.settlementStats(shard), (p) => read(shard, p));
    return (await pipeline.exec()).map(([err, reply]) => {
      if (err) throw err;
      return reply;
    });
  }
}

function noCaseDeadlines(): ReleaseResult['caseDeadlines'] {
  return { autoReleased: 0, extended: 0, waiting: 0, decisionSeconds: [] };
}

/** Adds `t` into the totals of its tier and kind, keeping them in tier order, charges first. */
function addPaid(into: PaidTotals[], t: PaidTotals): void {
  let to = into.find((p) => p.tier === t.tier && p.kind === t.kind);
  if (!to) {
    into.push((to = { tier: t.tier, kind: t.kind, count: 0, grossFen: 0, baseFeeFen: 0, techFeeFen: 0, netFen: 0 }));
    into.sort((a, b) => a.tier - b.tier || (a.kind === b.kind ? 0 : a.kind === 'charge' ? -1 : 1));
  }
  to.count += t.count;
  to.grossFen += t.grossFen;
  to.baseFeeFen += t.baseFeeFen;
  to.techFeeFen += t.techFeeFen;
  to.netFen += t.netFen;
}

/** The field of a fee tier table that says it is complete. */
const COMPUTED = '\tcomputed';

function previousMonth(month: string): string {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return m === 1 ? `${y - 1}-12` : `${y}-${String(m - 1).padStart(2, '0')}`;
}

function nextMonth(month: string): string {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`;
}

type InfoKind = 'scheduled' | 'held' | 'reversal';

/**
 * A settlement info value, "merchant\tamount\tkind" (null when missing or unreadable): what to pay the merchant, or
 * for a reversal (a refund of a paid charge) what to take back; `grossFen` is signed.
 */
function parseInfo(text: string | null): { merchantId: string; amount: number; grossFen: number; kind: InfoKind } | null {
  const m = text === null ? null : /^(.*)\t(\d+)\t(scheduled|held|reversal)$/s.exec(text);
  if (!m) return null;
  const amount = Number(m[2]);
  return { merchantId: m[1]!, amount, grossFen: m[3] === 'reversal' ? -amount : amount, kind: m[3] as InfoKind };
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

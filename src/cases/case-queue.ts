/**
 * The review queue: every review decision opens a case that holds its settlement (the rules script opens it), and
 * people decide it here. Cases live in their charge's shard beside the settlement they hold, so every decision on a
 * case is one script call, atomic with the money (src/cases/*.lua): two analysts racing for a case, a release racing
 * the deadline's auto-release in a settlement run, a cancel racing a refund each end one way, paid at most once.
 * Every action is logged with the case (the shard's case log), and the archive keeps the log (fenfu.case_actions).
 */
import type { ChainableCommander } from 'ioredis';
import type { RiskmonConfig } from '../config.ts';
import { SlotPipeline, type RedisClient } from '../redis/client.ts';
import type { Keys } from '../redis/keys.ts';
import { defineScript, loadScript } from '../redis/scripts.ts';
import { parseCaseRecord, type CaseRecord } from './case.ts';
import { refundsTtl } from '../quota/events.ts';

const takeNextScript = loadScript(new URL('./takeNextCase-4.lua', import.meta.url));
const decideScript = loadScript(new URL('./decideCase-9.lua', import.meta.url));
const cancelScript = loadScript(new URL('./cancelCase-13.lua', import.meta.url));

/** A case action refused: 404 unknown (or closed and archived), 409 held by another or closed, 403 not this person's. */
export class CaseError extends Error {
  override name = 'CaseError';
  constructor(
    readonly status: 403 | 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

export interface CaseCounts {
  open: number;
  locked: number;
  pendingApproval: number;
  /**
   * Open (or held) cases whose deadline is within the next cases.nearDeadlineMinutes: the default will apply to them
   * soon. Past deadlines are left out: those left open wait for a person (frozen, four eyes), which the oldest-case
   * age shows.
   */
  nearDeadline: number;
  /** Age of the open case with the earliest deadline in each index, the oldest of them, s (0 when none). */
  oldestOpenSeconds: number;
}

export class CaseQueue {
  private readonly takeNext: ReturnType<typeof defineScript>;
  private readonly decide: ReturnType<typeof defineScript>;
  private readonly cancelCase: ReturnType<typeof defineScript>;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly config: Pick<RiskmonConfig, 'cases' | 'retention'>,
  ) {
    this.takeNext = defineScript(redis, takeNextScript);
    this.decide = defineScript(redis, decideScript);
    this.cancelCase = defineScript(redis, cancelScript);
  }

  private get logMaxLen(): number {
    return this.config.retention.decisionStreamMaxLen;
  }

  private caseKeys(shard: number): string[] {
    const k = this.keys;
    return [k.cases(shard), k.caseOfCharge(shard), k.caseQueue(shard), k.caseLocks(shard), k.caseApprovals(shard), k.closedCases(shard), k.caseLog(shard)];
  }

  /**
   * Locks the open case with the earliest deadline for `analyst` (cases.lockMinutes), or undefined when none is
   * open. Shards are tried in the order of their first deadline; each take is atomic in its shard.
   */
  async next(analyst: string, nowMs: number): Promise<CaseRecord | undefined> {
    const heads = await this.perShard((shard, p) => {
      p.zrange(this.keys.caseQueue(shard), 0, 0, 'WITHSCORES');
      p.zrangebyscore(this.keys.caseLocks(shard), '-inf', nowMs, 'LIMIT', 0, 1);
    });
    const candidates = this.keys.shardIds
      .map((shard, i) => {
        const [queueHead, expired] = heads[i] as [string[], string[]];
        // A shard with only expired locks comes after every shard with a queue (its expired cases rejoin its queue).
        return { shard, first: queueHead.length ? Number(queueHead[1]) : expired.length ? Number.MAX_VALUE : undefined };
      })
      .filter((c): c is { shard: number; first: number } => c.first !== undefined)
      .sort((a, b) => a.first - b.first);
    for (const { shard } of candidates) {
      const k = this.keys;
      const taken = (await this.takeNext(this.redis, [k.cases(shard), k.caseQueue(shard), k.caseLocks(shard), k.caseLog(shard)], [analyst, nowMs, this.config.cases.lockMinutes * 60_000, this.logMaxLen])) as string | null;
      if (taken) return parseCaseRecord(taken);
    }
    return undefined;
  }

  /** The case with this id while Redis has it (open, or closed and not yet archived). */
  async get(id: string): Promise<CaseRecord | undefined> {
    const found = (await this.perShard((shard, p) => p.hget(this.keys.cases(shard), id))).find((v) => typeof v === 'string') as string | undefined;
    return found === undefined ? undefined : parseCaseRecord(found);
  }

  /**
   * Open cases nobody holds (expired locks included), cases held now, or releases waiting for approval, by
   * deadline (approvals: by when they were asked), at most `limit`.
   */
  async list(status: 'open' | 'locked' | 'pending_approval', nowMs: number, limit: number): Promise<CaseRecord[]> {
    const ids = (await this.perShard((shard, p) => {
      if (status === 'open') {
        p.zrange(this.keys.caseQueue(shard), 0, limit - 1);
        p.zrangebyscore(this.keys.caseLocks(shard), '-inf', nowMs, 'LIMIT', 0, limit);
      } else if (status === 'locked') {
        p.zrangebyscore(this.keys.caseLocks(shard), `(${nowMs}`, '+inf', 'LIMIT', 0, limit);
      } else {
        p.zrange(this.keys.caseApprovals(shard), 0, limit - 1);
      }
    })) as (string[] | string[][])[];
    const records = await this.perShard((shard, p) => {
      const mine = [...new Set(ids[shard]!.flat())];
      if (mine.length > 0) p.hmget(this.keys.cases(shard), ...mine);
    });
    const cases = records.flatMap((r) => ((r ?? []) as (string | null)[]).filter((t): t is string => t !== null).map(parseCaseRecord));
    const order = status === 'pending_approval' ? (c: CaseRecord) => c.releaseAskedAtMs ?? 0 : (c: CaseRecord) => c.deadlineMs;
    return cases.sort((a, b) => order(a) - order(b) || (a.id < b.id ? -1 : 1)).slice(0, limit);
  }

  /** Releases the case (see decideCase-9.lua): paid from its T+1 instant, or waiting for approval above four eyes. */
  async release(id: string, actor: string, note: string, nowMs: number): Promise<CaseRecord> {
    return this.decideOne(id, 'release', actor, note, nowMs);
  }

  /** A supervisor's approval of a release waiting for it (not the releaser's own). */
  async approve(id: string, actor: string, note: string, nowMs: number): Promise<CaseRecord> {
    return this.decideOne(id, 'approve', actor, note, nowMs);
  }

  /** Cancels the case (cancelCase-13.lua): never paid, or reversed; its credit given back. */
  async cancel(id: string, actor: string, supervisor: boolean, reason: string, nowMs: number): Promise<CaseRecord> {
    const { shard, record } = await this.locate(id);
    const k = this.keys;
    const reply = (await this.cancelCase(
      this.redis,
      [...this.caseKeys(shard), k.settlementDue(shard), k.settlementInfo(shard), k.settlementStats(shard), k.refunds(record.userId), k.account(record.userId), k.creditTotals(shard)],
      [id, actor, supervisor ? 1 : 0, nowMs, reason, record.userId, refundsTtl(this.config), this.logMaxLen, this.config.cases.fourEyesAboveFen],
    )) as [number, string];
    return answer(reply);
  }

  /** How many cases wait, and how close to their deadlines: the gauges (src/cases/case-metrics.ts). */
  async counts(nowMs: number): Promise<CaseCounts> {
    const near = nowMs + this.config.cases.nearDeadlineMinutes * 60_000;
    const per = (await this.perShard((shard, p) => {
      p.zcard(this.keys.caseQueue(shard));
      p.zcount(this.keys.caseQueue(shard), `(${nowMs}`, near);
      p.zcard(this.keys.caseApprovals(shard));
      p.zrange(this.keys.caseQueue(shard), 0, 0);
      p.zrange(this.keys.caseApprovals(shard), 0, 0);
      // Held cases' deadlines are in their records (a lock's expiry is its score): few, so read them all.
      p.zrange(this.keys.caseLocks(shard), 0, -1);
    })) as [number, number, number, string[], string[], string[]][];
    const counts: CaseCounts = { open: 0, locked: 0, pendingApproval: 0, nearDeadline: 0, oldestOpenSeconds: 0 };
    for (const [queued, nearQueued, approvals] of per) {
      counts.open += queued;
      counts.nearDeadline += nearQueued;
      counts.pendingApproval += approvals;
    }
    const records = await this.perShard((shard, p) => {
      const [, , , queueHead, approvalHead, held] = per[shard]!;
      const ids = [...queueHead, ...approvalHead, ...held];
      if (ids.length > 0) p.hmget(this.keys.cases(shard), ...ids);
    });
    for (const [shard, texts] of records.entries()) {
      const [, , , queueHead, approvalHead] = per[shard]!;
      for (const [i, text] of ((texts ?? []) as (string | null)[]).entries()) {
        if (text === null) continue;
        const c = parseCaseRecord(text);
        counts.oldestOpenSeconds = Math.max(counts.oldestOpenSeconds, Math.floor((nowMs - c.openedAtMs) / 1_000));
        if (i < queueHead.length + approvalHead.length || c.status !== 'open') continue;
        if ((c.lockedUntilMs ?? 0) > nowMs) counts.locked++;
        else counts.open++;
        if (c.deadlineMs > nowMs && c.deadlineMs <= near) counts.nearDeadline++;
      }
    }
    return counts;
  }

  /**
   * Deletes the closed cases that closed before `beforeMs` from Redis: without an archive (archive.enabled false)
   * nothing else lets them go. Returns how many.
   */
  async dropClosed(beforeMs: number): Promise<number> {
    let dropped = 0;
    for (const shard of this.keys.shardIds) {
      for (;;) {
        const ids = await this.redis.zrangebyscore(this.keys.closedCases(shard), '-inf', `(${beforeMs}`, 'LIMIT', 0, 1_000);
        if (ids.length === 0) break;
        // One shard, one slot: a plain transaction.
        await this.redis.multi().hdel(this.keys.cases(shard), ...ids).zrem(this.keys.closedCases(shard), ...ids).exec();
        dropped += ids.length;
      }
    }
    return dropped;
  }

  private async decideOne(id: string, action: 'release' | 'approve', actor: string, note: string, nowMs: number): Promise<CaseRecord> {
    const { shard } = await this.locate(id);
    const k = this.keys;
    const reply = (await this.decide(this.redis, [...this.caseKeys(shard), k.settlementDue(shard), k.settlementInfo(shard)], [id, action, actor, nowMs, note, this.config.cases.fourEyesAboveFen, this.logMaxLen])) as [number, string];
    return answer(reply);
  }

  private async locate(id: string): Promise<{ shard: number; record: CaseRecord }> {
    const found = await this.perShard((shard, p) => p.hget(this.keys.cases(shard), id));
    const shards = found.flatMap((v, shard) => (typeof v === 'string' ? [shard] : []));
    if (shards.length === 0) throw new CaseError(404, `no case ${id}`);
    // An eventId reused by another user's event (after its claim expired) can name a case in two shards: act on neither.
    if (shards.length > 1) throw new CaseError(409, `case id ${id} names cases of more than one user (an eventId used again): refused rather than acting on the wrong one`);
    return { shard: shards[0]!, record: parseCaseRecord(found[shards[0]!] as string) };
  }

  /**
   * Queues `read` on each shard's slot and answers each shard's replies in shard order: the reply itself when it
   * queued one command, an array of them when it queued several, undefined when none.
   */
  private async perShard(read: (shard: number, pipeline: ChainableCommander) => unknown): Promise<unknown[]> {
    const pipeline = new SlotPipeline(this.redis);
    const counts = this.keys.shardIds.map((shard) => pipeline.add(this.keys.cases(shard), (p) => read(shard, p)));
    const replies = (await pipeline.exec()).map(([err, reply]) => {
      if (err) throw err;
      return reply;
    });
    let at = 0;
    return counts.map((n) => {
      const mine = replies.slice(at, (at += n));
      return n === 0 ? undefined : n === 1 ? mine[0] : mine;
    });
  }
}

function answer([status, body]: [number, string]): CaseRecord {
  if (status === 200) return parseCaseRecord(body);
  throw new CaseError(status as 403 | 404 | 409, body);
}

/**
 * Reading stored decisions back (operators and acceptance tests, through `npm run decisions`): one by eventId, or
 * every decision of a namespace by SCAN over the decision keys of every master, fetched in batches (MGET per slot).
 */
import { scanAll, SlotPipeline, type RedisClient } from '../redis/client.ts';
import type { Keys } from '../redis/keys.ts';
import { parseDecision, type Decision } from './decision.ts';

export interface DecisionScanOptions {
  /** Only decisions whose decidedAt is at or after this instant, ms. @defaultValue every decision */
  sinceMs?: number;
  /** Keys asked of SCAN (COUNT) and fetched per MGET. @defaultValue 500 */
  batchSize?: number;
}

export class DecisionStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  /**
   * The stored decision of `eventId`, or null when there is none (never decided, or expired). A decision lives in
   * its user's shard: with `userId` one read, else one per shard (an eventId names one event, so one shard has it).
   */
  async get(eventId: string, userId?: string): Promise<Decision | null> {
    const shards = userId === undefined ? this.keys.shardIds : [this.keys.shardOf(userId)];
    const pipeline = new SlotPipeline(this.redis);
    for (const shard of shards) {
      const key = this.keys.decision(shard, eventId);
      pipeline.add(key, (p) => p.get(key));
    }
    for (const [err, raw] of await pipeline.exec()) {
      if (err) throw err;
      if (raw !== null) return parseDecision(raw as string);
    }
    return null;
  }

  /**
   * Every stored decision, in batches, in SCAN order (no particular order). As SCAN guarantees, a decision stored
   * throughout the scan is returned at least once (rarely twice: `sorted` dedupes by eventId); one written or
   * expiring meanwhile may be missed. Memory stays one batch.
   */
  async *scan(options: DecisionScanOptions = {}): AsyncGenerator<Decision[]> {
    const batchSize = options.batchSize ?? 500;
    const since = options.sinceMs ?? -Infinity;
    // One pattern over every shard; the exact shape is checked after (a user's key could hold ":dec:" in its id).
    const decisionKey = new RegExp(`^${regexEscape(this.keys.base)}:\\{s\\d+\\}:dec:`);
    for await (const found of scanAll(this.redis, `${globEscape(this.keys.base)}:{s*}:dec:*`, batchSize)) {
      const wanted = found.filter((k) => decisionKey.test(k));
      const pipeline = new SlotPipeline(this.redis);
      for (const key of wanted) pipeline.add(key, (p) => p.get(key));
      const batch: Decision[] = [];
      for (const [err, r] of await pipeline.exec()) {
        if (err) throw err;
        if (r === null) continue; // expired between SCAN and GET
        const d = parseDecision(r as string);
        if (Date.parse(d.decidedAt) >= since) batch.push(d);
      }
      if (batch.length > 0) yield batch;
    }
  }

  /** Every stored decision (see `scan`), each once, sorted by decidedAt then eventId: held in memory whole. */
  async sorted(options: DecisionScanOptions = {}): Promise<Decision[]> {
    const byId = new Map<string, Decision>();
    for await (const batch of this.scan(options)) for (const d of batch) byId.set(d.eventId, d);
    return [...byId.values()].sort(byDecidedAtThenEventId);
  }
}

function byDecidedAtThenEventId(a: Decision, b: Decision): number {
  const ta = Date.parse(a.decidedAt);
  const tb = Date.parse(b.decidedAt);
  if (ta !== tb) return ta - tb;
  return a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0;
}

function regexEscape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `text` as a literal inside a Redis glob pattern. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * Reading stored decisions back (operators and acceptance tests, through `npm run decisions`): one by eventId, or
 * every decision of a namespace by SCAN over the decision keys, fetched in batches with MGET.
 */
import type { Redis } from 'ioredis';
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
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** The stored decision of `eventId`, or null when there is none (never decided, or expired). */
  async get(eventId: string): Promise<Decision | null> {
    const raw = await this.redis.get(this.keys.decision(eventId));
    return raw === null ? null : parseDecision(raw);
  }

  /**
   * Every stored decision, in batches, in SCAN order (no particular order). As SCAN guarantees, a decision stored
   * throughout the scan is returned at least once (rarely twice: `sorted` dedupes by eventId); one written or
   * expiring meanwhile may be missed. Memory stays one batch.
   */
  async *scan(options: DecisionScanOptions = {}): AsyncGenerator<Decision[]> {
    const batchSize = options.batchSize ?? 500;
    const since = options.sinceMs ?? -Infinity;
    const prefix = this.keys.decision('');
    const match = `${globEscape(prefix)}*`;
    let cursor = '0';
    do {
      const [next, found] = await this.redis.scan(cursor, 'MATCH', match, 'COUNT', batchSize);
      cursor = next;
      for (let i = 0; i < found.length; i += batchSize) {
        const slice = found.slice(i, i + batchSize);
        const raw = await this.redis.mget(slice);
        const batch: Decision[] = [];
        for (const r of raw) {
          if (r === null) continue; // expired between SCAN and MGET
          const d = parseDecision(r);
          if (Date.parse(d.decidedAt) >= since) batch.push(d);
        }
        if (batch.length > 0) yield batch;
      }
    } while (cursor !== '0');
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

/** `text` as a literal inside a Redis glob pattern. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

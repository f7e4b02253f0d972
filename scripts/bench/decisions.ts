/**
 * Reads every decision a run made (from the decision stream, in the order Redis made them) and compares runs.
 * The stream entry id carries the Redis clock at the moment the decision was stored, which gives the
 * enqueue → decision latency without trusting any worker's notion of time.
 */
import type { Redis } from 'ioredis';
import type { RedisClient } from '../../src/redis/client.ts';

export interface DecidedRun {
  /** eventId → decision JSON without `decidedAt` (the only field allowed to differ between runs). */
  bodies: Map<string, string>;
  /** eventId → Redis time (ms) the decision was stored. */
  decidedAtMs: Map<string, number>;
  firstMs: number;
  lastMs: number;
}

const DECIDED_AT = /,"decidedAt":"[^"]*"/;
const EVENT_ID = /^\{"eventId":("(?:[^"\\]|\\.)*")/;

/** The comparable part of a stored decision. */
export function comparableDecision(json: string): string {
  return json.replace(DECIDED_AT, '');
}

/** The decisions of a stream, or only those after entry `after`. */
/** The decisions in `streamKeys` (every shard's stream) after the ids in `after` (one per stream, as given). */
export async function readDecisions(redis: RedisClient, streamKeys: readonly string[], { after = [], chunk = 5_000 }: { after?: readonly (string | undefined)[]; chunk?: number } = {}): Promise<DecidedRun> {
  const run: DecidedRun = { bodies: new Map(), decidedAtMs: new Map(), firstMs: Infinity, lastMs: 0 };
  for (const [s, streamKey] of streamKeys.entries()) {
    let start = after[s] ? `(${after[s]}` : '-';
    for (;;) {
      const entries = await redis.xrange(streamKey, start, '+', 'COUNT', chunk);
      for (const [id, fields] of entries) {
        const json = fields[1]!;
        const m = EVENT_ID.exec(json);
        const eventId = m ? (JSON.parse(m[1]!) as string) : (JSON.parse(json) as { eventId: string }).eventId;
        const ms = Number(id.slice(0, id.indexOf('-')));
        run.bodies.set(eventId, comparableDecision(json));
        run.decidedAtMs.set(eventId, ms);
        if (ms < run.firstMs) run.firstMs = ms;
        if (ms > run.lastMs) run.lastMs = ms;
      }
      if (entries.length < chunk) break;
      start = `(${entries[entries.length - 1]![0]}`;
    }
  }
  return run;
}

export interface DecisionComparison {
  compared: number;
  identical: boolean;
  /** Events the reference decided that the run did not. */
  missing: string[];
  /** Events the run decided that the reference did not. */
  extra: string[];
  /** Events decided differently. */
  different: string[];
  /** A few differences, reference first, for the report. */
  examples: { eventId: string; expected: string | undefined; actual: string | undefined }[];
}

/**
 * Compares a run with the reference over `eventIds` (the events the run was given; by default every event the
 * reference decided).
 */
export function compareDecisions(reference: Map<string, string>, actual: Map<string, string>, eventIds?: Iterable<string>): DecisionComparison {
  const ids = eventIds ? [...eventIds] : [...reference.keys()];
  const wanted = new Set(ids);
  const result: DecisionComparison = { compared: ids.length, identical: true, missing: [], extra: [], different: [], examples: [] };
  for (const id of ids) {
    const expected = reference.get(id);
    const got = actual.get(id);
    if (got === undefined) result.missing.push(id);
    else if (got !== expected) result.different.push(id);
    else continue;
    if (result.examples.length < 3) result.examples.push({ eventId: id, expected, actual: got });
  }
  for (const id of actual.keys()) if (!wanted.has(id)) result.extra.push(id);
  result.identical = result.missing.length === 0 && result.extra.length === 0 && result.different.length === 0;
  return result;
}

export function describeComparison(c: DecisionComparison): string {
  if (c.identical) return `identical (${c.compared} decisions)`;
  return `DIFFERENT: ${c.different.length} differ, ${c.missing.length} missing, ${c.extra.length} unexpected of ${c.compared}`;
}

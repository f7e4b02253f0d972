/**
 * Pushes an event stream into the live pipeline at a steady rate: an NDJSON file or the synthetic charge feed.
 * Lines that break the contract are rejected at the edge and dead-lettered with their reason; the rest go through
 * `EventProducer` to the shard queues. Used by `npm run produce`.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RiskmonConfig } from '../config.ts';
import type { DeadLetters } from '../deadletter/dead-letters.ts';
import { countLines as countFileLines, readEventLines } from '../events/lines.ts';
import type { EventRejectLabel, RiskEvent } from '../events/schema.ts';
import { syntheticCharges } from '../events/synthetic.ts';
import type { Keys } from '../redis/keys.ts';
import { createPacer } from '../pacing.ts';
import type { CardHasher } from '../events/card.ts';
import { BackpressureError, countLineRejection, EventProducer, type ProducerClock } from './producer.ts';
import type { RedisClient } from '../redis/client.ts';

export type FeedSource =
  | { kind: 'file'; path: string }
  | {
      kind: 'synthetic';
      count: number;
      /** @defaultValue 1000 */
      users?: number;
      /** @defaultValue 42 */
      seed?: number;
      /** About when the feed ends, ms: it spans the 26 hours before, ending about an hour early. @defaultValue now */
      endMs?: number;
    };

export interface FeedOptions {
  source: FeedSource;
  /** Events per second; 0 sends as fast as Redis takes them. @defaultValue 0 */
  rate?: number;
  connection: RedisClient;
  keys: Keys;
  /** Card numbers are replaced by their keyed hash before events are queued. */
  cards: CardHasher;
  config: RiskmonConfig;
  deadLetters: DeadLetters;
  /** The producer's clock. @defaultValue "wall" */
  clock?: ProducerClock;
  /** Called at most every `progressEveryMs` and once at the end. */
  onProgress?: (p: FeedProgress) => void;
  /** @defaultValue 200 */
  progressEveryMs?: number;
}

export interface FeedProgress {
  /** Lines read (file) or events generated (synthetic) so far. */
  read: number;
  sent: number;
  rejected: number;
  elapsedMs: number;
}

export interface FeedSummary {
  /** Events accepted into the queues. */
  sent: number;
  /** Rejected at the edge (before any queue: malformed, or refused by the producer) and dead-lettered. */
  rejected: number;
  /** Distinct rejection reasons with their counts, most frequent first. */
  rejectReasons: { reason: string; count: number }[];
  elapsedMs: number;
  /** Events sent per second over the whole run. */
  rate: number;
  /** Dead-letter source prefix of this run (`produce:<runId>:<line>`). */
  runId: string;
}

const SYNTHETIC_SPAN_MS = 26 * 3_600_000;

export async function feed(options: FeedOptions): Promise<FeedSummary> {
  const rate = options.rate ?? 0;
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const reasons = new Map<string, number>();
  const count = (reason: string) => reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  const producer = await EventProducer.open({
    connection: options.connection,
    keys: options.keys,
    cards: options.cards,
    config: options.config,
    clock: options.clock,
    rejectionSource: (line) => `produce:${runId}:${String(line)}`,
    // The reason without the clock it names (that differs per event): one line per kind in the summary.
    onRejected: (r) => count(r.reason.replace(/ \S+ \(at most/, ' (at most')),
  });
  const rejections: Promise<unknown>[] = [];
  const pacer = createPacer(rate);
  const started = Date.now();
  let read = 0;
  let rejected = 0;
  let lastProgress = started;
  const progress = () => options.onProgress?.({ read, sent: producer.sent - producer.rejected, rejected: rejected + producer.rejected, elapsedMs: Date.now() - started });

  try {
    for await (const item of items(options.source, runId, options.config.pipeline.maxLineBytes)) {
      read++;
      if (item.ok) {
        try {
          producer.send(item.event, read, item.occurredAtMs);
        } catch (e) {
          // The archive (or, bounded, the workers) is behind on this shard: wait for room rather than drop the line.
          if (!(e instanceof BackpressureError)) throw e;
          await producer.sendWhenReady(item.event, Infinity, read);
        }
      } else {
        rejected++;
        count(item.reason);
        rejections.push(
          options.deadLetters.recordNow({ source: `produce:${runId}:${read}`, reason: item.reason, raw: item.raw }),
          countLineRejection(options.connection, options.keys, item.label),
        );
        if (rejections.length >= 1_000) await Promise.all(rejections.splice(0));
      }
      // Only sent events count towards the rate: a rejected line is not offered.
      if (rate > 0) await pacer.wait(item.ok ? 1 : 0, () => producer.flush());
      else if (producer.sent % 5_000 === 0) await producer.flush(); // bounded memory when unpaced
      const now = Date.now();
      if (now - lastProgress >= (options.progressEveryMs ?? 200)) {
        lastProgress = now;
        progress();
      }
    }
    await producer.flush();
    await Promise.all(rejections);
  } finally {
    await producer.close();
  }
  progress();
  const elapsedMs = Date.now() - started;
  const sent = producer.sent - producer.rejected;
  return {
    sent,
    rejected: rejected + producer.rejected,
    rejectReasons: [...reasons].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count),
    elapsedMs,
    rate: elapsedMs > 0 ? Math.round((sent * 1000) / elapsedMs) : sent,
    runId,
  };
}

type Item = { ok: true; event: RiskEvent; occurredAtMs?: number } | { ok: false; reason: string; label: EventRejectLabel; raw: string };

async function* items(source: FeedSource, runId: string, maxLineBytes: number): AsyncGenerator<Item> {
  if (source.kind === 'synthetic') {
    const endMs = source.endMs ?? Date.now();
    for (const event of syntheticCharges({
      count: source.count,
      users: source.users ?? 1_000,
      seed: source.seed ?? 42,
      // A fresh eventId prefix per run: running the feed again adds new charges instead of duplicates.
      prefix: `syn-${runId}`,
      // An hour's margin: the generated times wander around the span (random steps), and a charge ahead of the
      // producer's clock by more than the skew would be refused.
      startMs: endMs - SYNTHETIC_SPAN_MS - 3_600_000,
      spanMs: SYNTHETIC_SPAN_MS,
    })) {
      yield { ok: true, event };
    }
    return;
  }
  // Byte-bounded: a line longer than maxLineBytes is rejected without being held whole.
  for await (const line of readEventLines(source.path, maxLineBytes)) {
    yield line.ok ? { ok: true, event: line.event, occurredAtMs: line.occurredAtMs } : { ok: false, reason: line.reason, label: line.label, raw: line.raw };
  }
}

/** Counts the lines of a file (for the progress bar's total), as the feed numbers them. */
export function countLines(path: string): Promise<number> {
  return countFileLines(path);
}

/** Queue payloads for tests that drive the processor directly, stamped the way a replay's producer stamps them. */
import type { BatchJobData } from '../../src/pipeline/batch-job.ts';
import { parseInstant } from '../../src/events/instant.ts';

/**
 * A v2 batch whose clocks are the replay clock (the largest occurredAt so far, in order), unclaimed, so the
 * worker claims its eventIds itself. Events without a readable occurredAt keep the clock before them.
 */
export function testBatch(events: unknown[], options: { clockMs?: number; claimed?: boolean } = {}): BatchJobData {
  let clock = options.clockMs ?? -Infinity;
  const clocks = events.map((e) => {
    const text = (e as { occurredAt?: unknown } | null)?.occurredAt;
    const at = typeof text === 'string' ? parseInstant(text) : undefined;
    if (options.clockMs === undefined && at?.ok) clock = Math.max(clock, at.ms);
    return Number.isFinite(clock) ? clock : Date.now();
  });
  return { v: 2, events, clocks, claimed: options.claimed ?? false, enqueuedAt: Date.now() };
}

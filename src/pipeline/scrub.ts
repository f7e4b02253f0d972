/**
 * Queue payloads rest in Redis (retained completed jobs, failed jobs). Our producer tokenizes cards before it
 * queues, but a foreign producer may queue raw events: after a batch is processed, its payload is rewritten so no
 * card number stays behind. Valid events keep everything but the card (so a redelivery still deduplicates by
 * eventId); rejected ones become their masked, truncated dead-letter text (they are rejected again, recorded once).
 */
import { safeRaw } from '../deadletter/dead-letters.ts';
import { tokenizeCharge, type CardHasher } from '../events/card.ts';
import { parseQueuedEvent } from '../events/schema.ts';
import type { BatchJobData } from './batch-job.ts';

/** The payload to store instead of `data`, or null when it holds no card number in clear. */
export function scrubBatch(data: unknown, cards: CardHasher): unknown | null {
  const events = (data as Partial<BatchJobData> | null)?.events;
  if (!Array.isArray(events)) return { v: 1, events: [], scrubbed: safeRaw(data) };
  let changed = false;
  const clean = events.map((raw) => {
    const parsed = parseQueuedEvent(raw);
    if (parsed.ok) {
      // Already tokenized (our producer) or not a charge: nothing to hide.
      if (parsed.event.type !== 'charge' || !('cardId' in parsed.event)) return raw;
      changed = true;
      return tokenizeCharge(parsed.event, cards);
    }
    changed = true;
    return safeRaw(raw);
  });
  return changed ? { ...(data as object), events: clean } : null;
}

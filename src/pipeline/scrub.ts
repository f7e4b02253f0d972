/**
 * Queue payloads rest in Redis (retained completed jobs, failed jobs). Our producer tokenizes cards before it
 * queues, but a foreign producer may queue raw events: after a batch is processed, its payload is rewritten so no
 * card number stays behind. Valid events keep everything but the card (so a redelivery still deduplicates by
 * eventId); rejected ones become their masked, truncated dead-letter text (they are rejected again, recorded once).
 */
import { safeRaw } from '../deadletter/dead-letters.ts';
import type { CardHasher } from '../events/card.ts';
import { parseEvent } from '../events/schema.ts';
import type { BatchJobData } from './batch-job.ts';

/** The payload to store instead of `data`, or null when it holds no card number in clear. */
export function scrubBatch(data: unknown, cards: CardHasher): unknown | null {
  const events = (data as Partial<BatchJobData> | null)?.events;
  if (!Array.isArray(events)) return { v: 1, events: [], scrubbed: safeRaw(data) };
  let changed = false;
  const clean = events.map((raw) => {
    if (parseEvent(raw).ok) {
      const cardId = (raw as { cardId?: unknown }).cardId;
      if (typeof cardId !== 'string') return raw;
      const token = cards.tokenize(cardId);
      if (token === cardId) return raw;
      changed = true;
      return { ...(raw as object), cardId: token };
    }
    changed = true;
    return safeRaw(raw);
  });
  return changed ? { ...(data as object), events: clean } : null;
}

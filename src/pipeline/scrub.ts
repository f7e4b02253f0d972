/**
 * Queue payloads rest in Redis (retained completed jobs, failed jobs). Our producer tokenizes cards before it
 * queues, but a foreign producer may queue raw events: after a batch is processed, its payload is rewritten so no
 * card number stays behind. Valid events keep everything but the card (so a redelivery still deduplicates by
 * eventId) and fields outside the contract (a card number may sit in any of them); rejected ones become their
 * masked, truncated dead-letter text (they are rejected again, recorded once).
 */
import { safeRaw } from '../deadletter/dead-letters.ts';
import { tokenizeCharge, type CardHasher } from '../events/card.ts';
import { eventSchemas, parseQueuedEvent, queuedChargeSchema } from '../events/schema.ts';
import type { BatchJobData } from './batch-job.ts';

/** The payload to store instead of `data`, or null when it holds no card number in clear. */
export function scrubBatch(data: unknown, cards: CardHasher): unknown | null {
  const events = (data as Partial<BatchJobData> | null)?.events;
  if (!Array.isArray(events)) return { v: 1, events: [], scrubbed: safeRaw(data) };
  let changed = false;
  const clean = events.map((raw) => {
    const parsed = parseQueuedEvent(raw);
    if (parsed.ok) {
      if (parsed.event.type === 'charge' && 'cardId' in parsed.event) {
        changed = true;
        return tokenizeCharge(parsed.event, cards);
      }
      // Already tokenized (our producer) or not a charge: only extra fields can hide a card. The parsed event
      // holds a subset of the raw keys, so equal counts mean there is none.
      if (Object.keys(raw as object).length === Object.keys(parsed.event).length) return raw;
      changed = true;
      return parsed.event;
    }
    changed = true;
    return safeRaw(raw);
  });
  return changed ? { ...(data as object), events: clean } : null;
}

/** The fields each event type may carry in a queue job (a charge as our producer queues it). */
const CONTRACT_FIELDS = new Map<unknown, Set<string>>(
  Object.entries(eventSchemas).map(([type, schema]) => [type, new Set(Object.keys(type === 'charge' ? queuedChargeSchema.shape : schema.shape))]),
);

/**
 * Whether a job payload may hold a card number in clear, so that `scrubBatch` must look at it: anything but an
 * events array, a raw card, an unknown type, or a field outside the contract (a card number may sit in any).
 * What our producer queues answers false.
 */
export function mayHoldCardData(data: unknown): boolean {
  const events = (data as Partial<BatchJobData> | null)?.events;
  if (!Array.isArray(events)) return true;
  for (const e of events) {
    if (typeof e !== 'object' || e === null) return true;
    const fields = CONTRACT_FIELDS.get((e as { type?: unknown }).type);
    if (fields === undefined) return true;
    for (const k in e) if (!fields.has(k)) return true;
  }
  return false;
}

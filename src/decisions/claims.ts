/**
 * The eventId claim (contract v1.1): an eventId names one event across every type and user. The first accepted
 * event that carries it, in production order, claims it with its canonical content; a repeat with the same content
 * is a duplicate (it gets the stored decision), a repeat with other content is rejected, naming the fields that
 * differ, and changes nothing.
 *
 * Claims are made where production order is known: by the producer, one flush after another, before a batch is
 * queued (never in a race between shards). Workers claim only batches that no producer claimed (queued by hand).
 * One `SET key content NX GET EX ttl` per event: a single key, no script, so it works unchanged on Redis Cluster.
 */
import type { ChainableCommander } from 'ioredis';
import type { EventType, QueuedCharge, RiskEvent } from '../events/schema.ts';
import { parseInstant } from '../events/instant.ts';
import type { Keys } from '../redis/keys.ts';

/**
 * The content of each event type that makes two events "the same", in order. Instants compare as instants
 * (`…+08:00` and the same instant in `Z` are equal), a card by its token (after normalisation), a missing currency
 * as "CNY". A new event type must be added here (the compiler says so).
 */
const CONTENT_FIELDS = {
  charge: ['userId', 'merchantId', 'card', 'amount', 'currency', 'occurredAt'],
  account_opened: ['userId', 'channel', 'quota', 'occurredAt'],
  repayment: ['userId', 'amount', 'dueAt', 'paidAt', 'occurredAt'],
  asset_snapshot: ['userId', 'balance', 'redeemed', 'occurredAt'],
  social_snapshot: ['userId', 'friendsAdded', 'momentsBlocked', 'occurredAt'],
} as const satisfies Record<EventType, readonly string[]>;

const INSTANT_FIELDS = new Set(['occurredAt', 'dueAt', 'paidAt']);

export type ClaimResult = { kind: 'new' } | { kind: 'repeat' } | { kind: 'conflict'; fields: string[] };

/**
 * The canonical content of an event, as stored in its claim: a JSON array [type, ...values]. A charge must be
 * tokenized (the claim holds its card token, never the card).
 */
export function claimContent(event: Exclude<RiskEvent, { type: 'charge' }> | QueuedCharge, occurredAtMs: number): string {
  const values: unknown[] = [event.type];
  const record = event as unknown as Record<string, unknown>;
  for (const field of CONTENT_FIELDS[event.type]) {
    if (field === 'occurredAt') values.push(occurredAtMs);
    else if (field === 'card') values.push((event as QueuedCharge).cardToken);
    else if (field === 'currency') values.push(record.currency ?? 'CNY');
    else if (INSTANT_FIELDS.has(field)) {
      const at = parseInstant(String(record[field]));
      values.push(at.ok ? at.ms : record[field]);
    } else values.push(record[field]);
  }
  return JSON.stringify(values);
}

/** The fields in which `content` differs from the claim `stored` (their names only: never a value). */
export function differingFields(stored: string, content: string): string[] {
  let a: unknown[];
  try {
    a = JSON.parse(stored) as unknown[];
  } catch {
    return ['(unreadable claim)'];
  }
  const b = JSON.parse(content) as unknown[];
  if (a[0] !== b[0]) return ['type'];
  const fields = CONTENT_FIELDS[b[0] as EventType];
  return fields.filter((_, i) => JSON.stringify(a[i + 1]) !== JSON.stringify(b[i + 1]));
}

export function conflictReason(fields: string[]): string {
  return `eventId reused with other content: ${fields.join(', ')} ${fields.length === 1 ? 'differs' : 'differ'} from the event first accepted with this eventId`;
}

export class EventClaims {
  constructor(
    private readonly keys: Keys,
    /** How long an eventId stays claimed (retention.decisionDays): longer than any event can be accepted. */
    private readonly ttlSeconds: number,
  ) {}

  /** Queues the claim of one event; read its reply with `interpret`. */
  queue(pipeline: ChainableCommander, eventId: string, content: string): void {
    pipeline.set(this.keys.eventClaim(eventId), content, 'EX', this.ttlSeconds, 'NX', 'GET');
  }

  /** The reply of `queue`'s command: null when this event claimed the id, else the content that holds it. */
  interpret(reply: unknown, content: string): ClaimResult {
    if (reply === null || reply === undefined) return { kind: 'new' };
    const stored = String(reply);
    if (stored === content) return { kind: 'repeat' };
    return { kind: 'conflict', fields: differingFields(stored, content) };
  }
}

/**
 * The eventId claim (contract v1.1): an eventId names one event across every type and user. The first accepted
 * event that carries it, in production order, claims it with its canonical content; a repeat with the same content
 * is a duplicate (it gets the stored decision), a repeat with other content is rejected, naming the fields that
 * differ, and changes nothing.
 *
 * Claims are made where production order is known: by the producer, one round after another, before a batch is
 * queued (never in a race between shards). Workers claim only batches that no producer claimed (queued by hand).
 * A round is one script call (claimEvents-n.lua) over its events' claim keys. Each key carries a bucket hash tag
 * (the eventId's hash modulo CLAIM_BUCKETS), so that on Redis Cluster a round can be split into one call per
 * bucket (not written yet: today's calls mix buckets, which only a single Redis accepts).
 */
import type { ChainableCommander, Redis } from 'ioredis';
import type { EventType, QueuedCharge, RiskEvent } from '../events/schema.ts';
import { parseInstant } from '../events/instant.ts';
import type { Keys } from '../redis/keys.ts';
import { defineScript, loadScript } from '../redis/scripts.ts';

const claimEventsScript = loadScript(new URL('./claimEvents-n.lua', import.meta.url));
/** Events per claim script call at most. */
const CLAIMS_PER_CALL = 1_000;

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
  refund: ['userId', 'chargeId', 'amount', 'occurredAt'],
} as const satisfies Record<EventType, readonly string[]>;

const INSTANT_FIELDS = new Set(['occurredAt', 'dueAt', 'paidAt']);

export type ClaimResult = { kind: 'new' } | { kind: 'repeat' } | { kind: 'conflict'; fields: string[] };

/**
 * The canonical content of an event, as stored in its claim: a JSON array [type, ...values]. A charge must be
 * tokenized (the claim holds its card token, never the card).
 */
export function claimContent(event: Exclude<RiskEvent, { type: 'charge' }> | QueuedCharge, occurredAtMs: number): string {
  if (event.type === 'charge') {
    // The hot path (every charge a producer sends): the same text JSON.stringify gives, without the array.
    return `["charge",${jsonString(event.userId)},${jsonString(event.merchantId)},"${event.cardToken}",${event.amount},"${event.currency ?? 'CNY'}",${occurredAtMs}]`;
  }
  const values: unknown[] = [event.type];
  const record = event as unknown as Record<string, unknown>;
  for (const field of CONTENT_FIELDS[event.type]) {
    if (field === 'occurredAt') values.push(occurredAtMs);
    else if (INSTANT_FIELDS.has(field)) {
      const at = parseInstant(String(record[field]));
      values.push(at.ok ? at.ms : record[field]);
    } else values.push(record[field]);
  }
  return JSON.stringify(values);
}

/** JSON.stringify(text), without its cost for text that needs no escaping (most ids). */
function jsonString(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : `"${text}"`;
}
const NEEDS_ESCAPE = /[\u0000-\u001f"\\]/;

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
  private readonly claim: ReturnType<typeof defineScript>;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    /** How long an eventId stays claimed (retention.decisionDays): longer than any event can be accepted. */
    private readonly ttlSeconds: number,
  ) {
    this.claim = defineScript(redis, claimEventsScript);
  }

  /**
   * Queues the claims of a round of events, in order: one command per CLAIMS_PER_CALL events (a call holds Redis
   * for its whole run). Returns how many commands it queued; `answers` reads their replies. `stops`, when given,
   * marks the events whose conflict ends the call (see `claimInOrder`).
   */
  queue(pipeline: ChainableCommander, eventIds: readonly string[], contents: readonly string[], stops = '', from = 0, to = eventIds.length): number {
    let commands = 0;
    for (let i = from; i < to; i += CLAIMS_PER_CALL) {
      const end = Math.min(to, i + CLAIMS_PER_CALL);
      const keys: string[] = [];
      const args: (string | number)[] = [this.ttlSeconds, stops.slice(i, end)];
      for (let k = i; k < end; k++) {
        keys.push(this.keys.eventClaim(eventIds[k]!));
        args.push(contents[k]!);
      }
      this.claim(pipeline, keys, args);
      commands++;
    }
    return commands;
  }

  /**
   * Claims the ids in order and returns one answer per event (see `interpret`), except that claiming ends at the
   * first conflict of an event marked "1" in `stops`: the answers then end with that event's, and no event after it
   * claimed anything (a replay decides those again with another clock, and a claim made meanwhile would change
   * what they find). Unmarked rounds take one round trip; marked ones one per CLAIMS_PER_CALL events.
   */
  async claimInOrder(eventIds: readonly string[], contents: readonly string[], stops = ''): Promise<unknown[]> {
    const answers: unknown[] = [];
    const step = stops.includes('1') ? CLAIMS_PER_CALL : eventIds.length;
    for (let from = 0; from < eventIds.length; from += step) {
      const to = Math.min(eventIds.length, from + step);
      const pipeline = this.redis.pipeline();
      const commands = this.queue(pipeline, eventIds, contents, stops, from, to);
      const replies = (await pipeline.exec()) ?? [];
      if (replies.length !== commands) throw new Error('missing replies');
      const part = this.answers(replies);
      answers.push(...part);
      if (part.length < to - from) break;
    }
    return answers;
  }

  /** The answers of `queue`'s commands, one per event in order. @throws the first command error */
  answers(replies: readonly [Error | null, unknown][]): unknown[] {
    const out: unknown[] = [];
    for (const [err, reply] of replies) {
      if (err) throw err;
      out.push(...(reply as unknown[]));
    }
    return out;
  }

  /** One event's answer (from `answers`): 0 when it claimed the id, else the content holding it. */
  interpret(reply: unknown, content: string): ClaimResult {
    if (reply === 0 || reply === null || reply === undefined) return { kind: 'new' };
    const stored = String(reply);
    if (stored === content) return { kind: 'repeat' };
    return { kind: 'conflict', fields: differingFields(stored, content) };
  }
}

/**
 * The eventId claim (contract v1.1): an eventId names one event across every type and user. The first accepted
 * event that carries it, in production order, claims it with its canonical content; a repeat with the same content
 * is a duplicate (it gets the stored decision), a repeat with other content is rejected, naming the fields that
 * differ, and changes nothing.
 *
 * Claims are made where production order is known: by the producer, one round after another, before a batch is
 * queued (never in a race between shards). Workers claim only batches that no producer claimed (queued by hand).
 * Each claim key carries a bucket hash tag (the eventId's hash modulo CLAIM_BUCKETS), and a round is one script
 * call (claimEvents-n.lua) per bucket over its events' keys, in order, all pipelined in one round trip (a call's
 * keys are in one slot, as Redis Cluster requires). The same eventId always falls in the same bucket, so a
 * repeat within a round meets its first in the same call.
 */
import type { EventType, QueuedCharge, RiskEvent } from '../events/schema.ts';
import { parseInstant } from '../events/instant.ts';
import { shardOf } from '../pipeline/shards.ts';
import { SlotPipeline, type RedisClient } from '../redis/client.ts';
import { CLAIM_BUCKETS, type Keys } from '../redis/keys.ts';
import { defineScript, loadScript } from '../redis/scripts.ts';

const claimEventsScript = loadScript(new URL('./claimEvents-n.lua', import.meta.url));
const releaseClaimsScript = loadScript(new URL('./releaseClaims-n.lua', import.meta.url));
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
  private readonly release: ReturnType<typeof defineScript>;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    /** How long an eventId stays claimed (retention.decisionDays): longer than any event can be accepted. */
    private readonly ttlSeconds: number,
  ) {
    this.claim = defineScript(redis, claimEventsScript);
    this.release = defineScript(redis, releaseClaimsScript);
  }

  /**
   * Claims the ids in order and returns one answer per event (see `interpret`), except that claiming ends at the
   * first conflict of an event marked "1" in `stops`: the answers then end with that event's, and no event after it
   * holds a claim (a replay decides those again with another clock, and a claim made meanwhile would change what
   * they find). Each step is one round trip: the whole round unmarked, CLAIMS_PER_CALL events marked.
   */
  async claimInOrder(eventIds: readonly string[], contents: readonly string[], stops = ''): Promise<unknown[]> {
    const answers: unknown[] = [];
    const step = stops.includes('1') ? CLAIMS_PER_CALL : eventIds.length;
    for (let from = 0; from < eventIds.length; from += step) {
      const to = Math.min(eventIds.length, from + step);
      const part = await this.claimStep(eventIds, contents, stops, from, to);
      answers.push(...part);
      if (part.length < to - from) break;
    }
    return answers;
  }

  /** Events [from, to): one call per bucket (CLAIMS_PER_CALL events at most), answers in event order. */
  private async claimStep(eventIds: readonly string[], contents: readonly string[], stops: string, from: number, to: number): Promise<unknown[]> {
    const byBucket = new Map<number, number[]>();
    for (let i = from; i < to; i++) {
      const bucket = shardOf(eventIds[i]!, CLAIM_BUCKETS);
      let indexes = byBucket.get(bucket);
      if (!indexes) byBucket.set(bucket, (indexes = []));
      indexes.push(i);
    }
    const calls: number[][] = [];
    const pipeline = new SlotPipeline(this.redis);
    for (const indexes of byBucket.values()) {
      for (let c = 0; c < indexes.length; c += CLAIMS_PER_CALL) {
        const call = indexes.slice(c, c + CLAIMS_PER_CALL);
        const keys = call.map((i) => this.keys.eventClaim(eventIds[i]!));
        const marks = stops === '' ? '' : call.map((i) => stops[i] ?? '0').join('');
        pipeline.add(keys[0]!, (p) => this.claim(p, keys, [this.ttlSeconds, marks, ...call.map((i) => contents[i]!)]));
        calls.push(call);
      }
    }
    const replies = await pipeline.exec();
    if (replies.length !== calls.length) throw new Error('missing replies');
    const answers: unknown[] = new Array(to - from);
    // A call ends at its first stop conflict; the round ends at the earliest of them, in event order.
    let end = to;
    calls.forEach((call, c) => {
      const [err, reply] = replies[c]!;
      if (err) throw err;
      const got = reply as unknown[];
      got.forEach((answer, j) => (answers[call[j]! - from] = answer));
      // The script ended the call at a stop conflict: its last answer (which may be the call's last event too).
      const last = call[got.length - 1];
      if (last !== undefined && stops[last] === '1' && got[got.length - 1] !== 0 && got[got.length - 1] !== contents[last]) end = Math.min(end, last + 1);
    });
    if (end === to) return answers;
    // Events after the stop in other buckets did claim: give back what they claimed (only a claim still holding
    // their own content, so nothing another producer claimed meanwhile).
    const claimedAfter = new Map<number, number[]>();
    for (let i = end; i < to; i++) {
      if (answers[i - from] !== 0) continue;
      const bucket = shardOf(eventIds[i]!, CLAIM_BUCKETS);
      let indexes = claimedAfter.get(bucket);
      if (!indexes) claimedAfter.set(bucket, (indexes = []));
      indexes.push(i);
    }
    const undo = new SlotPipeline(this.redis);
    for (const indexes of claimedAfter.values()) {
      const keys = indexes.map((i) => this.keys.eventClaim(eventIds[i]!));
      undo.add(keys[0]!, (p) => this.release(p, keys, indexes.map((i) => contents[i]!)));
    }
    for (const [err] of await undo.exec()) if (err) throw err;
    return answers.slice(0, end - from);
  }

  /** One event's answer (from `claimInOrder`): 0 when it claimed the id, else the content holding it. */
  interpret(reply: unknown, content: string): ClaimResult {
    if (reply === 0 || reply === null || reply === undefined) return { kind: 'new' };
    const stored = String(reply);
    if (stored === content) return { kind: 'repeat' };
    return { kind: 'conflict', fields: differingFields(stored, content) };
  }
}

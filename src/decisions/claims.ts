/**
 * The eventId claim (contract v1.1): an eventId names one event across every type and user. The first accepted
 * event that carries it, in production order, claims it with its canonical content; a repeat with the same content
 * is a duplicate (it gets the stored decision), a repeat with other content is rejected, naming the fields that
 * differ, and changes nothing.
 *
 * Claims are made where production order is known: by the producer, one round after another, before a batch is
 * queued (never in a race between shards). Workers claim only batches that no producer claimed (queued by hand).
 * A round is one script call (claimEvents-n.lua) per bucket (the eventId's hash modulo CLAIM_BUCKETS, a hash tag)
 * over its events, in order, all pipelined in one round trip (a call's keys are in one slot, as Redis Cluster
 * requires). The same eventId always falls in the same bucket, so a repeat within a round meets its first in the
 * same call.
 *
 * What Redis keeps of a claim is small, because every accepted event has one: in a hash of its bucket, its
 * generation and its part, the field is a 53-bit hash of the eventId (in base 36, 11 characters) and the value a
 * digest of the content (about 14). A generation is one claim window
 * (events.maxAgeDays + 1 day, longer than any event can be accepted after another with its id); a claim is looked for
 * in the generation of the event's clock, the one before and the one after (clocks need not rise: a batch queued by
 * hand or a second producer may carry a clock earlier than the one an id was claimed with), and written into the
 * first, whose hash expires two windows after it is created. So a claim is found by any event whose clock is within
 * one window of the claim's, on either side. The parts (retention.claimHashesPerBucket per bucket and generation) keep each hash
 * small enough for Redis's compact listpack encoding (at most hash-max-listpack-entries, 128 by default).
 *
 * The digest holds the event type exactly, 6 bits of each content field and 32 bits of the whole content: a
 * conflict goes unseen less than once in 10^11 (then the event is a repeat: its charge record answers a redelivery
 * of the same user's charge, and refuses another user's); a differing field goes unnamed one time in 64 (the reason
 * names the fields it can).
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
  // The reason as queued (card numbers masked): two deliveries of one complaint mask alike.
  complaint: ['userId', 'chargeId', 'reason', 'occurredAt'],
} as const satisfies Record<EventType, readonly string[]>;

const INSTANT_FIELDS = new Set(['occurredAt', 'dueAt', 'paidAt']);

export type ClaimResult = { kind: 'new' } | { kind: 'repeat' } | { kind: 'conflict'; fields: string[] };

const TYPE_CODES: Record<EventType, number> = { charge: 0, account_opened: 1, repayment: 2, asset_snapshot: 3, social_snapshot: 4, refund: 5, complaint: 6 };
const TYPES_BY_CODE = Object.fromEntries(Object.entries(TYPE_CODES).map(([t, c]) => [c, t])) as Record<number, EventType>;
const TWO_32 = 2 ** 32; // the eventId hash: 21 high bits and 32 low ones
/** One character per 6 bits of a field's hash. */
const FIELD_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * The claim digest of an event (see the module's comment): its type's code, a character per content field, and the
 * whole content's hash in base 36, from its canonical content: [type, ...values] as JSON. A charge must be tokenized (its content has the card token, never the card).
 */
export function claimDigest(event: Exclude<RiskEvent, { type: 'charge' }> | QueuedCharge, occurredAtMs: number): string {
  if (event.type === 'charge') {
    // The hot path (every charge a producer sends): the texts JSON.stringify gives, without building arrays.
    return digestOf(0, [jsonString(event.userId), jsonString(event.merchantId), `"${event.cardToken}"`, String(event.amount), `"${event.currency ?? 'CNY'}"`, String(occurredAtMs)]);
  }
  const texts: string[] = [];
  const record = event as unknown as Record<string, unknown>;
  for (const field of CONTENT_FIELDS[event.type]) {
    let value = record[field];
    if (field === 'occurredAt') value = occurredAtMs;
    else if (INSTANT_FIELDS.has(field)) {
      const at = parseInstant(String(value));
      if (at.ok) value = at.ms;
    }
    texts.push(JSON.stringify(value) ?? 'null');
  }
  return digestOf(TYPE_CODES[event.type], texts);
}

function digestOf(type: number, texts: readonly string[]): string {
  let fields = '';
  let whole = FNV_OFFSET;
  for (let i = 0; i < texts.length; i++) {
    const t = texts[i]!;
    fields += FIELD_CHARS[mix32(fnv1a(t)) & 63];
    whole = fnv1a(t, Math.imul(whole ^ 0x2c, FNV_PRIME));
  }
  return `${type}${fields}${mix32(whole).toString(36)}`;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
function fnv1a(text: string, seed = FNV_OFFSET): number {
  let h = seed;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), FNV_PRIME);
  return h >>> 0;
}

/** A finalizer that spreads every input bit over the output (FNV alone leaves low bits weak). */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A claim's field: a 53-bit hash of the eventId, and which part of its bucket's hashes it goes to. */
export function claimField(eventId: string, parts: number): { field: string; part: number } {
  let a = FNV_OFFSET;
  let b = 0x050c5d1f;
  for (let i = 0; i < eventId.length; i++) {
    const c = eventId.charCodeAt(i);
    a = Math.imul(a ^ c, FNV_PRIME);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  const high = mix32(b ^ Math.imul(a, 0x27d4eb2d)) & 0x1fffff;
  const low = mix32(a ^ high);
  // Base 36: a run of 13 to 19 digits would look like a card number to every scanner of what Redis holds.
  return { field: (high * TWO_32 + low).toString(36), part: low % parts };
}

/** JSON.stringify(text), without its cost for text that needs no escaping (most ids). */
function jsonString(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : `"${text}"`;
}
const NEEDS_ESCAPE = /[\u0000-\u001f"\\]/;

/** The fields in which the event of `digest` differs from the claim `stored` (their names only: never a value). */
export function differingFields(stored: string, digest: string): string[] {
  const type = TYPES_BY_CODE[Number(digest[0])]!;
  const fields = CONTENT_FIELDS[type];
  if (!/^\d[A-Za-z0-9_-]+$/.test(stored) || TYPES_BY_CODE[Number(stored[0])] === undefined) return ['(unreadable claim)'];
  if (stored[0] !== digest[0]) return ['type'];
  return fields.filter((_, i) => stored[1 + i] !== digest[1 + i]);
}

export function conflictReason(fields: string[]): string {
  if (fields.length === 0) return 'eventId reused with other content: it differs from the event first accepted with this eventId';
  return `eventId reused with other content: ${fields.join(', ')} ${fields.length === 1 ? 'differs' : 'differ'} from the event first accepted with this eventId`;
}

/** How long claims are kept, and in how many hashes (see the module's comment). */
export interface ClaimLayout {
  /** One generation, ms: longer than events.maxAgeDays + events.maxFutureSkewSeconds. */
  windowMs: number;
  /** Hashes per bucket and generation (retention.claimHashesPerBucket). */
  parts: number;
}

export function claimLayout(config: { events: { maxAgeDays: number; maxFutureSkewSeconds: number }; retention: { claimHashesPerBucket: number } }): ClaimLayout {
  const acceptedWithin = config.events.maxAgeDays * 86_400_000 + config.events.maxFutureSkewSeconds * 1000;
  return { windowMs: (Math.ceil(acceptedWithin / 86_400_000) + 1) * 86_400_000, parts: config.retention.claimHashesPerBucket };
}

export class EventClaims {
  private readonly claim: ReturnType<typeof defineScript>;
  private readonly release: ReturnType<typeof defineScript>;

  /** Seconds a generation's hash lives from its creation: two windows and a day. */
  private readonly ttlSeconds: number;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly layout: ClaimLayout,
  ) {
    this.claim = defineScript(redis, claimEventsScript);
    this.release = defineScript(redis, releaseClaimsScript);
    this.ttlSeconds = Math.round((2 * layout.windowMs + 86_400_000) / 1000);
  }

  /** The keys (this generation's hash, the one before's, the one after's) and field of `eventId`'s claim at `clockMs`. */
  private where(eventId: string, clockMs: number, bucket = shardOf(eventId, CLAIM_BUCKETS)): { current: string; previous: string; next: string; field: string } {
    const { field, part } = claimField(eventId, this.layout.parts);
    const generation = Math.floor(clockMs / this.layout.windowMs);
    const hash = (g: number) => this.keys.claimHash(bucket, g, part);
    return { current: hash(generation), previous: hash(generation - 1), next: hash(generation + 1), field };
  }

  /** The digest holding `eventId`'s claim at `clockMs`, or null (for operators and tests). */
  async held(eventId: string, clockMs: number): Promise<string | null> {
    const { current, previous, next, field } = this.where(eventId, clockMs);
    for (const key of [current, previous, next]) {
      const digest = await this.redis.hget(key, field);
      if (digest !== null) return digest;
    }
    return null;
  }

  /**
   * Claims the ids in order, each at its event's clock, and returns one answer per event (see `interpret`), except
   * that claiming ends at the first conflict of an event marked "1" in `stops`: the answers then end with that
   * event's, and no event after it holds a claim (a replay decides those again with another clock, and a claim made
   * meanwhile would change what they find). Each step is one round trip: the whole round unmarked, CLAIMS_PER_CALL
   * events marked.
   */
  async claimInOrder(eventIds: readonly string[], digests: readonly string[], clocks: readonly number[], stops = ''): Promise<unknown[]> {
    const places = eventIds.map((id, i) => {
      const bucket = shardOf(id, CLAIM_BUCKETS);
      return { bucket, ...this.where(id, clocks[i]!, bucket) };
    });
    const answers: unknown[] = [];
    const step = stops.includes('1') ? CLAIMS_PER_CALL : eventIds.length;
    for (let from = 0; from < eventIds.length; from += step) {
      const to = Math.min(eventIds.length, from + step);
      const part = await this.claimStep(places, digests, stops, from, to);
      answers.push(...part);
      if (part.length < to - from) break;
    }
    return answers;
  }

  /** Events [from, to): one call per bucket (CLAIMS_PER_CALL events at most), answers in event order. */
  private async claimStep(places: readonly ClaimPlace[], digests: readonly string[], stops: string, from: number, to: number): Promise<unknown[]> {
    const calls: number[][] = [];
    const pipeline = new SlotPipeline(this.redis);
    for (const indexes of byBucket(places, from, to)) {
      for (let c = 0; c < indexes.length; c += CLAIMS_PER_CALL) {
        const call = indexes.slice(c, c + CLAIMS_PER_CALL);
        const keys = call.flatMap((i) => [places[i]!.current, places[i]!.previous, places[i]!.next]);
        const marks = stops === '' ? '' : call.map((i) => stops[i] ?? '0').join('');
        pipeline.add(keys[0]!, (p) => this.claim(p, keys, [this.ttlSeconds, marks, ...call.flatMap((i) => [places[i]!.field, digests[i]!])]));
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
      if (last !== undefined && stops[last] === '1' && got[got.length - 1] !== 0 && got[got.length - 1] !== digests[last]) end = Math.min(end, last + 1);
    });
    if (end === to) return answers;
    // Events after the stop in other buckets did claim: give back what they claimed (only a claim still holding
    // their own digest, so nothing another producer claimed meanwhile).
    const undo = new SlotPipeline(this.redis);
    for (const indexes of byBucket(places, end, to)) {
      const claimed = indexes.filter((i) => answers[i - from] === 0);
      if (claimed.length === 0) continue;
      const keys = claimed.map((i) => places[i]!.current);
      undo.add(keys[0]!, (p) => this.release(p, keys, claimed.flatMap((i) => [places[i]!.field, digests[i]!])));
    }
    for (const [err] of await undo.exec()) if (err) throw err;
    return answers.slice(0, end - from);
  }

  /** One event's answer (from `claimInOrder`): 0 when it claimed the id, else the digest holding it. */
  interpret(reply: unknown, digest: string): ClaimResult {
    if (reply === 0 || reply === null || reply === undefined) return { kind: 'new' };
    const stored = String(reply);
    if (stored === digest) return { kind: 'repeat' };
    return { kind: 'conflict', fields: differingFields(stored, digest) };
  }
}

interface ClaimPlace {
  bucket: number;
  current: string;
  previous: string;
  next: string;
  field: string;
}

/** Indexes [from, to) of `places` grouped by bucket, in order within each. */
function byBucket(places: readonly ClaimPlace[], from: number, to: number): number[][] {
  const groups = new Map<number, number[]>();
  for (let i = from; i < to; i++) {
    const bucket = places[i]!.bucket;
    let indexes = groups.get(bucket);
    if (!indexes) groups.set(bucket, (indexes = []));
    indexes.push(i);
  }
  return [...groups.values()];
}

/**
 * The event contract (v1.1): the trust boundary. Everything past `parseEvent` may assume a well-formed event.
 * Unknown extra fields are dropped; unknown types are rejected. No id but `cardId` may hold a card number, and no
 * rejection reason shows one (reasons quote input: they are masked here, at the source).
 */
import { z } from 'zod';
import { findCardNumber, maskCardNumbers } from './card.ts';
import { parseInstant } from './instant.ts';

export const MAX_AMOUNT_FEN = 100_000_000;

const LONE_SURROGATE = /\p{Surrogate}/u;

const anyId = (what: string) =>
  z
    .string({ error: (iss) => (iss.input === undefined ? `${what} is missing` : `${what} must be a string`) })
    .min(1, `${what} must not be empty`)
    .max(128, `${what} is longer than 128 characters`)
    // Redis stores UTF-8: a lone surrogate becomes U+FFFD, so two different ids would share one key.
    .refine((s) => !LONE_SURROGATE.test(s), `${what} is not valid Unicode (lone surrogate)`);

/** An id that names something (event, user, merchant): it becomes key names and records, so never a card number. */
export const id = (what: string) => anyId(what).refine((s) => !findCardNumber(s), `${what} holds a card number`);

/** An instant string; the parsed epoch-ms sits beside it as `<field>Ms` after validation. */
const instant = (what: string) =>
  z
    .string({ error: (iss) => (iss.input === undefined ? `${what} is missing` : `${what} must be an ISO-8601 string`) })
    .superRefine((s, ctx) => {
    const r = parseInstant(s);
    if (!r.ok) ctx.addIssue({ code: 'custom', message: `${what} ${JSON.stringify(s.slice(0, 40))}: ${r.reason}` });
  });

export const amountFen = (what = 'amount') =>
  z
    .number({
      error: (iss) => (iss.input === undefined ? `${what} is missing` : `${what} must be a number of fen (integer)`),
    })
    .int(`${what} must be a whole number of fen`)
    .min(1, `${what} must be at least 1 fen`)
    .max(MAX_AMOUNT_FEN, `${what} must be at most ${MAX_AMOUNT_FEN} fen (1,000,000 CNY)`);

export const chargeSchema = z.object({
  type: z.literal('charge'),
  eventId: id('eventId'),
  userId: id('userId'),
  merchantId: id('merchantId'),
  cardId: anyId('cardId'),
  amount: amountFen(),
  currency: z.literal('CNY', { error: 'currency must be "CNY"' }).optional(),
  occurredAt: instant('occurredAt'),
});

export type ChargeEvent = z.output<typeof chargeSchema>;

/** Largest balance or redemption a snapshot may carry (10 billion CNY): keeps the percentage arithmetic exact. */
export const MAX_HOLDING_FEN = 1_000_000_000_000;

const holdingFen = (what: string) =>
  z
    .number({ error: (iss) => (iss.input === undefined ? `${what} is missing` : `${what} must be a number of fen (integer)`) })
    .int(`${what} must be a whole number of fen`)
    .min(0, `${what} must not be negative`)
    // Grouped digits: thirteen in a row would be masked as a possible card number.
    .max(MAX_HOLDING_FEN, `${what} must be at most ${MAX_HOLDING_FEN.toLocaleString('en-US')} fen`);

/** A credit account is opened once per user; its quota must lie inside the channel's band (checked when applied). */
export const accountOpenedSchema = z.object({
  type: z.literal('account_opened'),
  eventId: id('eventId'),
  userId: id('userId'),
  channel: z.enum(['invited', 'applied'], { error: 'channel must be "invited" or "applied"' }),
  quota: amountFen('quota'),
  occurredAt: instant('occurredAt'),
});

/** On time when paidAt ≤ dueAt; it counts in the calibration period that contains paidAt. */
export const repaymentSchema = z.object({
  type: z.literal('repayment'),
  eventId: id('eventId'),
  userId: id('userId'),
  amount: amountFen(),
  dueAt: instant('dueAt'),
  paidAt: instant('paidAt'),
  occurredAt: instant('occurredAt'),
});

/** Wealth products held (零钱通/理财通) and what was redeemed since the previous snapshot. */
export const assetSnapshotSchema = z.object({
  type: z.literal('asset_snapshot'),
  eventId: id('eventId'),
  userId: id('userId'),
  balance: holdingFen('balance'),
  redeemed: holdingFen('redeemed'),
  occurredAt: instant('occurredAt'),
});

export const socialSnapshotSchema = z.object({
  type: z.literal('social_snapshot'),
  eventId: id('eventId'),
  userId: id('userId'),
  friendsAdded: z
    .number({ error: (iss) => (iss.input === undefined ? 'friendsAdded is missing' : 'friendsAdded must be a whole number') })
    .int('friendsAdded must be a whole number')
    .min(0, 'friendsAdded must not be negative')
    .max(1_000_000, 'friendsAdded must be at most 1000000'),
  // Strict boolean: "false" or 0 is rejected rather than coerced.
  momentsBlocked: z.boolean({ error: (iss) => (iss.input === undefined ? 'momentsBlocked is missing' : 'momentsBlocked must be true or false') }),
  occurredAt: instant('occurredAt'),
});

/**
 * A refund of a charge: at most what is left of it (checked when applied). It gives its amount back to the user's
 * available credit when credit_limit counted the charge.
 */
export const refundSchema = z.object({
  type: z.literal('refund'),
  eventId: id('eventId'),
  userId: id('userId'),
  chargeId: id('chargeId'),
  amount: amountFen(),
  occurredAt: instant('occurredAt'),
});

/**
 * A complaint about a charge (seed 002, 建立投诉订单快速处理通道): it freezes the charge's settlement if not yet paid and
 * opens a review case (src/cases/complaints.ts), and marks the charge disputed in the archive. The reason is free
 * text from a person: a card number in it is masked here, before it is queued or stored.
 */
export const complaintSchema = z.object({
  type: z.literal('complaint'),
  eventId: id('eventId'),
  userId: id('userId'),
  chargeId: id('chargeId'),
  reason: z
    .string({ error: (iss) => (iss.input === undefined ? 'reason is missing' : 'reason must be a string') })
    .min(1, 'reason must not be empty')
    .max(2_000, 'reason is longer than 2000 characters')
    .refine((s) => !LONE_SURROGATE.test(s), 'reason is not valid Unicode (lone surrogate)')
    .transform((s) => maskCardNumbers(s)),
  occurredAt: instant('occurredAt'),
});

export type ComplaintEvent = z.output<typeof complaintSchema>;
export type AccountOpenedEvent = z.output<typeof accountOpenedSchema>;
export type RefundEvent = z.output<typeof refundSchema>;
export type RepaymentEvent = z.output<typeof repaymentSchema>;
export type AssetSnapshotEvent = z.output<typeof assetSnapshotSchema>;
export type SocialSnapshotEvent = z.output<typeof socialSnapshotSchema>;

/**
 * A charge as it travels through the queues: the producer replaces the card by its keyed hash and last four
 * characters, so no card number sits in Redis even while a job waits.
 */
export const queuedChargeSchema = chargeSchema.omit({ cardId: true }).extend({
  cardToken: z.string().regex(/^[A-Za-z0-9_-]{16}$/, 'cardToken must be the 16-character card hash'),
  cardLast4: z.string().regex(/^\*{4}.{0,4}$/, 'cardLast4 must look like "****1234"'),
});

export type QueuedCharge = z.output<typeof queuedChargeSchema>;

/**
 * Every event type the service knows, by `type`. Other modules (quota) register theirs here,
 * so routing and validation stay one table.
 */
export const eventSchemas = {
  charge: chargeSchema,
  account_opened: accountOpenedSchema,
  repayment: repaymentSchema,
  asset_snapshot: assetSnapshotSchema,
  social_snapshot: socialSnapshotSchema,
  refund: refundSchema,
  complaint: complaintSchema,
} as const satisfies Record<string, z.ZodType<{ type: string; eventId: string; userId: string; occurredAt: string }>>;

export type EventType = keyof typeof eventSchemas;
export type RiskEvent = z.output<(typeof eventSchemas)[EventType]>;

/**
 * Why an input is not an event, as a bounded label (metrics `reason`; the full text goes to the dead-letter store):
 * a line that is not JSON (or empty), a line over the byte bound, a JSON value that is not an object, a missing or
 * unknown type, any other field.
 */
export const EVENT_REJECT_LABELS = ['invalid_json', 'too_long', 'not_an_object', 'unknown_type', 'invalid_field'] as const;
export type EventRejectLabel = (typeof EVENT_REJECT_LABELS)[number];

export type Rejection = { ok: false; reason: string; label: EventRejectLabel };
export type ParseResult = { ok: true; event: RiskEvent; occurredAtMs: number } | Rejection;

/** A rejection: reasons quote input (a type, an instant, a JSON error's excerpt), so card numbers are masked here. */
export const rejected = (reason: string, label: EventRejectLabel = 'invalid_field'): Rejection => ({ ok: false, reason: maskCardNumbers(reason), label });

export function parseEvent(value: unknown): ParseResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return rejected(`event must be a JSON object, got ${describe(value)}`, 'not_an_object');
  }
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string' || !Object.hasOwn(eventSchemas, type)) {
    if (type === undefined) return rejected('type is missing', 'unknown_type');
    if (typeof type !== 'string') return rejected(`type must be a string, got ${describe(type)}`);
    return rejected(`unknown event type ${JSON.stringify(type.slice(0, 40))} (known: ${Object.keys(eventSchemas).join(', ')})`, 'unknown_type');
  }
  if (type === 'charge' && (value as { cardId?: unknown }).cardId !== undefined) {
    const fast = fastCharge<ChargeEvent>(value as Record<string, unknown>);
    if (fast) return fast;
  }
  const parsed = eventSchemas[type as EventType].safeParse(value);
  if (!parsed.success) return rejected(parsed.error.issues.map(formatIssue).join('; '));
  const at = parseInstant(parsed.data.occurredAt);
  return at.ok ? { ok: true, event: parsed.data, occurredAtMs: at.ms } : rejected(at.reason);
}

/**
 * A queue payload event: the contract, except that a charge may carry `cardToken` + `cardLast4` instead of
 * `cardId` (what the producer sends).
 */
export function parseQueuedEvent(value: unknown): { ok: true; event: RiskEvent | QueuedCharge; occurredAtMs: number } | Rejection {
  const v = value as { type?: unknown; cardToken?: unknown; cardId?: unknown } | null;
  if (typeof v === 'object' && v !== null && v.type === 'charge' && v.cardToken !== undefined && v.cardId === undefined) {
    const fast = fastCharge<QueuedCharge>(v as Record<string, unknown>);
    if (fast) return fast;
    const parsed = queuedChargeSchema.safeParse(value);
    if (!parsed.success) return rejected(parsed.error.issues.map(formatIssue).join('; '));
    const at = parseInstant(parsed.data.occurredAt);
    return at.ok ? { ok: true, event: parsed.data, occurredAtMs: at.ms } : rejected(at.reason);
  }
  return parseEvent(value);
}

// isWellFormed() is the lone-surrogate test of `anyId`, without a Unicode regex (it runs four times per event);
// findCardNumber answers an ASCII id with fewer than 13 digits in one pass over its characters.
const isAnyId = (v: unknown): v is string => typeof v === 'string' && v.length >= 1 && v.length <= 128 && v.isWellFormed();
const isId = (v: unknown): v is string => isAnyId(v) && !findCardNumber(v);

const CARD_TOKEN = /^[A-Za-z0-9_-]{16}$/;
const CARD_LAST4 = /^\*{4}.{0,4}$/;

/**
 * The per-event hot path for a well-formed charge, raw (`cardId`) or as queued (`cardToken` + `cardLast4`): exactly
 * the checks of `chargeSchema` / `queuedChargeSchema`, without zod's machinery (several microseconds per event at
 * tens of thousands of events per second). It only ever accepts; anything it does not accept goes through zod,
 * which decides and words the reason. The output equals zod's: the schema's fields in the schema's order, unknown
 * fields dropped.
 */
function fastCharge<T extends ChargeEvent | QueuedCharge>(v: Record<string, unknown>): { ok: true; event: T; occurredAtMs: number } | undefined {
  const { eventId, userId, merchantId, cardId, cardToken, cardLast4, amount, currency, occurredAt } = v;
  if (!isId(eventId) || !isId(userId) || !isId(merchantId)) return undefined;
  const queued = cardId === undefined;
  if (queued ? !(typeof cardToken === 'string' && CARD_TOKEN.test(cardToken) && typeof cardLast4 === 'string' && CARD_LAST4.test(cardLast4)) : !isAnyId(cardId)) {
    return undefined;
  }
  if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount < 1 || amount > MAX_AMOUNT_FEN) return undefined;
  if (typeof occurredAt !== 'string' || (currency !== undefined && currency !== 'CNY') || !Object.hasOwn(v, 'currency') !== (currency === undefined)) return undefined;
  const at = parseInstant(occurredAt);
  if (!at.ok) return undefined;
  // Object literals in the schema's field order, built directly: this runs for every event.
  let event: ChargeEvent | QueuedCharge;
  if (queued) {
    event =
      currency === undefined
        ? { type: 'charge', eventId, userId, merchantId, amount, occurredAt, cardToken: cardToken as string, cardLast4: cardLast4 as string }
        : { type: 'charge', eventId, userId, merchantId, amount, currency: 'CNY', occurredAt, cardToken: cardToken as string, cardLast4: cardLast4 as string };
  } else {
    event =
      currency === undefined
        ? { type: 'charge', eventId, userId, merchantId, cardId: cardId as string, amount, occurredAt }
        : { type: 'charge', eventId, userId, merchantId, cardId: cardId as string, amount, currency: 'CNY', occurredAt };
  }
  return { ok: true, event: event as T, occurredAtMs: at.ms };
}

/** One NDJSON line → event or reason. Never throws. */
export function parseEventLine(line: string, maxBytes: number): ParseResult {
  if (Buffer.byteLength(line, 'utf8') > maxBytes) return rejected(`line longer than ${maxBytes} bytes`, 'too_long');
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    // V8 quotes the line around the error ("…"4111 1111 1111 1111… is not valid JSON"): masked by `rejected`.
    return rejected(`not valid JSON: ${(e as Error).message}`, 'invalid_json');
  }
  return parseEvent(value);
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.join('.');
  return issue.message.startsWith(path) || path === '' ? issue.message : `${path}: ${issue.message}`;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

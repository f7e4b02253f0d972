/**
 * parseEvent validates charges without zod on its hot path; this checks that it accepts exactly what the zod
 * schema accepts and returns the same event (fields and their order), on values built around every edge.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chargeSchema, MAX_AMOUNT_FEN, parseEvent, parseQueuedEvent, queuedChargeSchema } from '../../src/events/schema.ts';
import { parseInstant } from '../../src/events/instant.ts';
import { luhnCheckDigit } from '../../src/events/synthetic.ts';

/** The contract as zod alone decides it. */
function zodOnly(value: unknown): { ok: boolean; event?: unknown; ms?: number } {
  const parsed = chargeSchema.safeParse(value);
  if (!parsed.success) return { ok: false };
  const at = parseInstant(parsed.data.occurredAt);
  return at.ok ? { ok: true, event: parsed.data, ms: at.ms } : { ok: false };
}

/** Mostly valid values, sometimes one from around the edge: a property run exercises one broken field at a time. */
const mostly = <T, U>(valid: fc.Arbitrary<T>, edge: fc.Arbitrary<U>) => fc.oneof({ arbitrary: valid, weight: 8 }, { arbitrary: edge, weight: 1 });

/**
 * Digit runs around the card-number edge: 11–21 digits from a card prefix or not, Luhn-valid or not, written
 * plain, with one or two separators, full-width, inside other text.
 */
const cardLike = fc
  .tuple(
    fc.constantFrom('4', '51', '55', '2221', '2720', '34', '37', '35', '6011', '65', '62', '1', '56', '2220', '9'),
    fc.integer({ min: 11, max: 21 }),
    fc.nat(),
    fc.boolean(),
    fc.constantFrom('', ' ', '-', '.', '  ', '\u3000', '\u200b', '--'),
    fc.constantFrom('plain', 'full-width', 'wrapped'),
  )
  .map(([prefix, length, seed, valid, sep, form]) => {
    let body = prefix;
    for (let i = 0; body.length < length - 1; i++) body += String((seed >> (i % 28)) % 10 & 7);
    const check = Number(luhnCheckDigit(body));
    const digits = body + String(valid ? check : (check + 1) % 10);
    let text = digits.replace(/(\d{4})(?=\d)/g, `$1${sep}`);
    if (form === 'full-width') text = text.replace(/\d/g, (c) => String.fromCharCode(0xff10 + Number(c)));
    if (form === 'wrapped') text = `u-${text}-x`;
    return text.slice(0, 128);
  });

const id = mostly(
  fc.string({ minLength: 1, maxLength: 20 }),
  fc.oneof(fc.constantFrom('', 'x'.repeat(128), 'x'.repeat(129), '6222020000000017', '6222 0200 0000 0017', 'a\uD800b', '\uDC00'), cardLike, fc.integer(), fc.constant(null)),
);
const amount = mostly(
  fc.integer({ min: 1, max: MAX_AMOUNT_FEN }),
  fc.oneof(fc.constantFrom(0, -1, 1, MAX_AMOUNT_FEN, MAX_AMOUNT_FEN + 1, 1.5, Number.NaN, Infinity, '100', true, null, 2 ** 53), fc.double()),
);
const instant = mostly(
  fc.integer({ min: Date.parse('1970-01-01T00:00:00Z'), max: Date.parse('2100-01-01T00:00:00Z') }).map((ms) => new Date(ms).toISOString()),
  fc.oneof(
    fc.constantFrom(
      '2026-03-10T23:00:00.000+08:00',
      '2026-03-10T23:00:00+08:00',
      '2026-03-10T23:00:00Z',
      '2026-02-30T10:00:00+08:00',
      '2026-03-10T24:00:00Z',
      '2026-03-10T10:00:00',
      '2026-03-10',
      '',
      '1969-12-31T23:59:59Z',
    ),
    fc.string(),
    fc.integer(),
  ),
);
const currency = mostly(fc.constant('CNY'), fc.constantFrom('USD', 'cny', null, 0));

const charge = fc.record(
  {
    type: fc.constant('charge'),
    eventId: id,
    userId: id,
    merchantId: id,
    cardId: id,
    amount,
    currency,
    occurredAt: instant,
    note: fc.oneof(fc.string(), cardLike),
  },
  { requiredKeys: ['type', 'eventId', 'userId', 'merchantId', 'cardId', 'amount', 'occurredAt'] },
).chain((c) => fc.constantFrom(c, withoutOneField(c)));

function withoutOneField(c: Record<string, unknown>): Record<string, unknown> {
  const keys = Object.keys(c).filter((k) => k !== 'type');
  const copy = { ...c };
  delete copy[keys[(String(c.eventId).length + keys.length) % keys.length]!];
  return copy;
}

describe('charge validation fast path', () => {
  it('accepts exactly what the schema accepts, with the same output', () => {
    fc.assert(
      fc.property(charge, (value) => {
        const fast = parseEvent(value);
        const slow = zodOnly(value);
        expect(fast.ok).toBe(slow.ok);
        if (fast.ok) {
          expect(JSON.stringify(fast.event)).toBe(JSON.stringify(slow.event));
          expect(fast.occurredAtMs).toBe(slow.ms);
        }
      }),
      { numRuns: 5_000 },
    );
  });

  it('does the same for charges as the producer queues them (card hash and last four)', () => {
    const token = mostly(fc.stringMatching(/^[A-Za-z0-9_-]{16}$/), fc.oneof(fc.constantFrom('', 'short', 'x'.repeat(17), '6222020000000017'), fc.integer()));
    const last4 = mostly(fc.constantFrom('****1234', '****', '****ab'), fc.constantFrom('1234', '*****12345', '', 0));
    const queued = fc.record(
      { type: fc.constant('charge'), eventId: id, userId: id, merchantId: id, cardToken: token, cardLast4: last4, amount, currency, occurredAt: instant },
      { requiredKeys: ['type', 'eventId', 'userId', 'merchantId', 'cardToken', 'amount', 'occurredAt'] },
    );
    fc.assert(
      fc.property(queued, (value) => {
        const fast = parseQueuedEvent(value);
        const parsed = queuedChargeSchema.safeParse(value);
        const at = parsed.success ? parseInstant(parsed.data.occurredAt) : undefined;
        expect(fast.ok).toBe(Boolean(at?.ok));
        if (fast.ok && parsed.success) {
          expect(JSON.stringify(fast.event)).toBe(JSON.stringify(parsed.data));
          expect(fast.occurredAtMs).toBe(at?.ok && at.ms);
        }
      }),
      { numRuns: 3_000 },
    );
  });

  it('rejects ids holding a card number with zod\'s reason, raw and queued', () => {
    const raw = { type: 'charge', eventId: 'e', userId: 'u', merchantId: 'm', cardId: '4111 1111 1111 1111', amount: 1, occurredAt: '2026-03-10T10:00:00Z' };
    expect(parseEvent(raw).ok).toBe(true);
    const queued = { type: 'charge', eventId: 'e', userId: 'u', merchantId: 'm', cardToken: 'A'.repeat(16), cardLast4: '****1111', amount: 1, occurredAt: '2026-03-10T10:00:00Z' };
    expect(parseQueuedEvent(queued).ok).toBe(true);
    for (const field of ['eventId', 'userId', 'merchantId']) {
      for (const card of ['4111111111111111', '4111-1111-1111-1111', '４１１１１１１１１１１１１１１１']) {
        expect(parseEvent({ ...raw, [field]: card })).toEqual({ ok: false, reason: `${field} holds a card number`, label: 'invalid_field' });
        expect(parseQueuedEvent({ ...queued, [field]: card })).toEqual({ ok: false, reason: `${field} holds a card number`, label: 'invalid_field' });
      }
    }
  });

  it('drops unknown fields on the queued fast path too', () => {
    const queued = { note: '4111111111111111', type: 'charge', eventId: 'e', userId: 'u', merchantId: 'm', cardToken: 'A'.repeat(16), cardLast4: '****1111', amount: 1, occurredAt: '2026-03-10T10:00:00Z', pan: '4111111111111111' };
    const r = parseQueuedEvent(queued);
    expect(r.ok && JSON.stringify(r.event)).toBe(
      '{"type":"charge","eventId":"e","userId":"u","merchantId":"m","amount":1,"occurredAt":"2026-03-10T10:00:00Z","cardToken":"AAAAAAAAAAAAAAAA","cardLast4":"****1111"}',
    );
  });

  it('keeps zod wording for what it rejects', () => {
    const r = parseEvent({ type: 'charge', eventId: 'e', userId: 'u', merchantId: 'm', cardId: 'c', amount: 1.5, occurredAt: '2026-03-10T10:00:00Z' });
    expect(r).toEqual({ ok: false, reason: 'amount must be a whole number of fen', label: 'invalid_field' });
  });

  it('drops unknown fields and keeps a present currency', () => {
    const r = parseEvent({ note: 'x', type: 'charge', occurredAt: '2026-03-10T10:00:00Z', currency: 'CNY', amount: 5, cardId: 'c', merchantId: 'm', userId: 'u', eventId: 'e' });
    expect(r.ok && JSON.stringify(r.event)).toBe(
      '{"type":"charge","eventId":"e","userId":"u","merchantId":"m","cardId":"c","amount":5,"currency":"CNY","occurredAt":"2026-03-10T10:00:00Z"}',
    );
  });
});

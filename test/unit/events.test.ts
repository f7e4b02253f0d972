import { describe, expect, it } from 'vitest';
import { parseEvent, parseEventLine } from '../../src/events/schema.ts';

const charge = {
  type: 'charge',
  eventId: 'e-1',
  userId: 'u-1',
  merchantId: 'm-1',
  cardId: '6222021234567890128',
  amount: 12_345,
  occurredAt: '2026-03-10T23:00:00.000+08:00',
};

const reasonOf = (value: unknown) => {
  const r = parseEvent(value);
  expect(r.ok).toBe(false);
  return r.ok ? '' : r.reason;
};

describe('charge contract', () => {
  it('accepts a valid charge and gives its instant', () => {
    const r = parseEvent(charge);
    expect(r).toEqual({ ok: true, event: charge, occurredAtMs: Date.parse('2026-03-10T15:00:00Z') });
  });

  it('ignores unknown extra fields and accepts currency CNY', () => {
    const r = parseEvent({ ...charge, currency: 'CNY', channel: 'qr', nested: { a: 1 } });
    expect(r.ok && r.event).toEqual({ ...charge, currency: 'CNY' });
  });

  it.each([
    [{ amount: 100.5 }, 'amount must be a whole number of fen'],
    [{ amount: '100' }, 'amount must be a number of fen'],
    [{ amount: true }, 'amount must be a number of fen'],
    [{ amount: 0 }, 'amount must be at least 1 fen'],
    [{ amount: -1 }, 'amount must be at least 1 fen'],
    [{ amount: 100_000_001 }, 'amount must be at most 100000000 fen'],
    [{ amount: Number.MAX_SAFE_INTEGER + 2 }, 'amount must be'],
    [{ currency: 'USD' }, 'currency must be "CNY"'],
    [{ eventId: '' }, 'eventId must not be empty'],
    [{ eventId: 'x'.repeat(129) }, 'eventId is longer than 128 characters'],
    [{ userId: 7 }, 'userId must be a string'],
    [{ merchantId: undefined }, 'merchantId is missing'],
    [{ cardId: null }, 'cardId must be a string'],
    [{ occurredAt: '2026-03-10T23:00:00' }, 'occurredAt "2026-03-10T23:00:00": expected an ISO-8601 instant'],
    [{ occurredAt: '2026-02-30T10:00:00+08:00' }, 'has no day 30'],
    [{ occurredAt: 1_773_154_800_000 }, 'occurredAt must be an ISO-8601 string'],
  ])('rejects %j with a readable reason', (patch, reason) => {
    expect(reasonOf({ ...charge, ...patch })).toContain(reason);
  });

  it('lists every broken field at once', () => {
    const reason = reasonOf({ ...charge, amount: 0, userId: '' });
    expect(reason).toContain('amount');
    expect(reason).toContain('userId');
  });

  it('rejects unknown and missing types, and values that are not objects', () => {
    expect(reasonOf({ ...charge, type: 'refund' })).toBe('unknown event type "refund" (known: charge, account_opened, repayment, asset_snapshot, social_snapshot)');
    expect(reasonOf({ ...charge, type: undefined })).toBe('type is missing');
    expect(reasonOf([charge])).toBe('event must be a JSON object, got an array');
    expect(reasonOf(null)).toBe('event must be a JSON object, got null');
    expect(reasonOf('charge')).toBe('event must be a JSON object, got string');
  });

  it('does not let __proto__ keys change the event', () => {
    const r = parseEventLine(`{"__proto__":{"amount":1},${JSON.stringify(charge).slice(1)}`, 16_384);
    expect(r.ok && r.event.type === 'charge' && r.event.amount).toBe(12_345);
    expect(({} as Record<string, unknown>).amount).toBeUndefined();
  });
});

describe('NDJSON lines', () => {
  it('rejects lines that are not JSON or are too long', () => {
    const bad = parseEventLine('{"type":"charge",', 16_384);
    expect(!bad.ok && bad.reason).toMatch(/^not valid JSON/);
    const long = parseEventLine(JSON.stringify({ ...charge, pad: 'x'.repeat(20_000) }), 16_384);
    expect(!long.ok && long.reason).toBe('line longer than 16384 bytes');
  });
});

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
    expect(reasonOf({ ...charge, type: 'chargeback' })).toBe('unknown event type "chargeback" (known: charge, account_opened, repayment, asset_snapshot, social_snapshot, refund, complaint)');
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

describe('no card number in any id (contract v1.1)', () => {
  const CARD = '4111111111111111';
  const forms = [CARD, '4111 1111 1111 1111', '4111-1111-1111-1111', '4111.1111.1111.1111', '４１１１１１１１１１１１１１１１', `order-${CARD}`];
  const valid = {
    charge,
    account_opened: { type: 'account_opened', eventId: 'e-2', userId: 'u-1', channel: 'invited', quota: 500_000, occurredAt: '2026-03-10T10:00:00+08:00' },
    repayment: { type: 'repayment', eventId: 'e-3', userId: 'u-1', amount: 100, dueAt: '2026-03-10T10:00:00+08:00', paidAt: '2026-03-09T10:00:00+08:00', occurredAt: '2026-03-10T10:00:00+08:00' },
    asset_snapshot: { type: 'asset_snapshot', eventId: 'e-4', userId: 'u-1', balance: 1, redeemed: 0, occurredAt: '2026-03-10T10:00:00+08:00' },
    social_snapshot: { type: 'social_snapshot', eventId: 'e-5', userId: 'u-1', friendsAdded: 3, momentsBlocked: false, occurredAt: '2026-03-10T10:00:00+08:00' },
  };
  const idFields = Object.entries(valid).flatMap(([type, event]) => ['eventId', 'userId', 'merchantId'].filter((f) => f in event).map((field) => [type, field] as const));

  it.each(idFields)('%s: %s holding a card number is rejected, the reason names the field, never the number', (type, field) => {
    expect(parseEvent(valid[type as keyof typeof valid]).ok).toBe(true);
    for (const form of forms) {
      const reason = reasonOf({ ...valid[type as keyof typeof valid], [field]: form });
      expect(reason).toBe(`${field} holds a card number`);
    }
  });

  it('lets cardId hold a card number, and ids with ordinary numbers pass', () => {
    expect(parseEvent({ ...charge, cardId: '4111 1111 1111 1111' }).ok).toBe(true);
    for (const ordinary of ['4111111111111112', '1795253110961', 'order-20260310-000123456', '12345678901234567890']) {
      expect(parseEvent({ ...charge, eventId: ordinary, userId: ordinary, merchantId: ordinary }).ok, ordinary).toBe(true);
    }
  });

  it.each(Object.keys(valid))('%s: fields outside the contract are dropped, card numbers in them with it', (type) => {
    const event = valid[type as keyof typeof valid];
    const r = parseEvent({ ...event, note: CARD, cardNumber: '4111 1111 1111 1111', [CARD]: 1, nested: { pan: CARD } });
    expect(r.ok && r.event).toEqual(event);
    expect(JSON.stringify(r.ok && r.event)).not.toMatch(/4111.?1111/);
  });

  it('masks card numbers that reasons quote from the input (type, instants, JSON errors)', () => {
    const reasons = [
      reasonOf({ ...charge, type: `x ${CARD}` }),
      reasonOf({ ...charge, occurredAt: '4111 1111 1111 1111' }),
      reasonOf({ ...charge, occurredAt: '４１１１１１１１１１１１１１１１' }),
      reasonOf({ ...valid.repayment, dueAt: '4111.1111.1111.1111' }),
    ];
    const line = parseEventLine(`{"type":"charge","cardId":"${CARD}" oops}`, 16_384);
    const lineAtEnd = parseEventLine(`{"type":"charge","cardId":4111-1111-1111-1111}`, 16_384);
    reasons.push(line.ok ? '' : line.reason, lineAtEnd.ok ? '' : lineAtEnd.reason);
    for (const reason of reasons) {
      expect(reason).not.toBe('');
      expect(reason.normalize('NFKC').replace(/[^0-9]/g, '')).not.toContain('411111111111');
    }
    expect(reasons[1]).toContain('[masked …1111]');
  });

  it('words the largest holding with grouped digits, so the limit is not masked as a card', () => {
    expect(reasonOf({ ...valid.asset_snapshot, balance: 1e13 })).toBe('balance must be at most 1,000,000,000,000 fen');
  });
});

/** The eventId claim's digest of an event's canonical content (contract v1.1), and where a claim is kept. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { claimDigest, claimField, claimLayout, conflictReason, differingFields } from '../../src/decisions/claims.ts';

const charge = (over: Record<string, unknown> = {}) =>
  ({ type: 'charge', eventId: 'e-1', userId: 'u-1', merchantId: 'm-1', amount: 100, occurredAt: '2026-03-10T10:00:00+08:00', cardToken: 'AAAAAAAAAAAAAAAA', cardLast4: '****0128', ...over }) as never;

describe('claim digest', () => {
  it('is a short text, equal for equal content and different for other content, for any ids', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary', minLength: 1 }), fc.boolean(), (userId, merchantId, other, withCurrency) => {
        const e = charge({ userId, merchantId, ...(withCurrency ? { currency: 'CNY' } : {}) });
        const digest = claimDigest(e, 123);
        expect(digest).toMatch(/^0[A-Za-z0-9_-]{6}[0-9a-z]{1,7}$/);
        expect(claimDigest(charge({ userId, merchantId }), 123)).toBe(digest);
        // Another user, merchant or instant: another digest (a collision is one in 2^32 and more).
        expect(claimDigest(charge({ userId: userId + other, merchantId }), 123)).not.toBe(digest);
        expect(claimDigest(charge({ userId, merchantId: merchantId + other }), 123)).not.toBe(digest);
        expect(claimDigest(e, 124)).not.toBe(digest);
      }),
      { numRuns: 3_000 },
    );
  });

  it('compares instants as instants, and a missing currency as CNY', () => {
    const a = { type: 'repayment', eventId: 'r', userId: 'u', amount: 5, dueAt: '2026-03-10T00:00:00+08:00', paidAt: '2026-03-09T16:00:00Z', occurredAt: 'x' } as never;
    const b = { type: 'repayment', eventId: 'r', userId: 'u', amount: 5, dueAt: '2026-03-09T16:00:00.000Z', paidAt: '2026-03-10T00:00:00+08:00', occurredAt: 'y' } as never;
    expect(claimDigest(a, 1)).toBe(claimDigest(b, 1));
    expect(claimDigest(charge(), 1)).toBe(claimDigest(charge({ currency: 'CNY' }), 1));
    expect(claimDigest(charge(), 1)).not.toBe(claimDigest(charge({ currency: 'USD' }), 1));
  });

  it('names the fields that differ, never their values, and the type exactly', () => {
    const first = claimDigest(charge(), 1);
    expect(differingFields(first, claimDigest(charge({ amount: 90_000_000, userId: 'u-9' }), 2))).toEqual(['userId', 'amount', 'occurredAt']);
    expect(differingFields(first, claimDigest({ type: 'account_opened', eventId: 'e-1', userId: 'u-1', channel: 'invited', quota: 1, occurredAt: 'x' } as never, 1))).toEqual(['type']);
    expect(differingFields('{"old":"claim"}', first)).toEqual(['(unreadable claim)']);
    expect(conflictReason(['amount'])).toBe('eventId reused with other content: amount differs from the event first accepted with this eventId');
    expect(conflictReason(['userId', 'card'])).not.toMatch(/u-1|AAAA/);
    expect(conflictReason([])).toBe('eventId reused with other content: it differs from the event first accepted with this eventId');
  });

  it('names a differing field of a charge about 63 times in 64', () => {
    let named = 0;
    let conflicts = 0;
    for (let i = 0; i < 4_000; i++) {
      const a = claimDigest(charge({ amount: i + 1 }), 1);
      const b = claimDigest(charge({ amount: i + 2 }), 1);
      conflicts++;
      if (differingFields(a, b).includes('amount')) named++;
      expect(a).not.toBe(b);
    }
    expect(named / conflicts).toBeGreaterThan(0.97);
  });
});

describe('claim field', () => {
  it('is a stable integer below 2^53, and spreads eventIds evenly over the parts', () => {
    expect(claimField('e-1', 64)).toEqual(claimField('e-1', 64));
    const counts = new Array(64).fill(0);
    for (let i = 0; i < 64_000; i++) {
      const { field, part } = claimField(`evt-2026-03-10-${i.toString().padStart(8, '0')}`, 64);
      expect(Number.isSafeInteger(parseInt(field, 36))).toBe(true);
      expect(field).toMatch(/^[0-9a-z]{1,11}$/);
      counts[part]++;
    }
    // 1,000 expected each; a fair spread stays well within ±15%.
    expect(Math.min(...counts)).toBeGreaterThan(850);
    expect(Math.max(...counts)).toBeLessThan(1_150);
  });

  it('keeps claims a whole day longer than any event can be accepted after another with its id', () => {
    expect(claimLayout({ events: { maxAgeDays: 7, maxFutureSkewSeconds: 300 }, retention: { claimHashesPerBucket: 64 } })).toEqual({ windowMs: 9 * 86_400_000, parts: 64 });
    expect(claimLayout({ events: { maxAgeDays: 7, maxFutureSkewSeconds: 0 }, retention: { claimHashesPerBucket: 8 } })).toEqual({ windowMs: 8 * 86_400_000, parts: 8 });
  });
});

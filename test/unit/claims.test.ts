/** The eventId claim's canonical content: what makes two events "the same" (contract v1.1). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { claimContent, conflictReason, differingFields } from '../../src/decisions/claims.ts';

const charge = (over: Record<string, unknown> = {}) =>
  ({ type: 'charge', eventId: 'e-1', userId: 'u-1', merchantId: 'm-1', amount: 100, occurredAt: '2026-03-10T10:00:00+08:00', cardToken: 'AAAAAAAAAAAAAAAA', cardLast4: '****0128', ...over }) as never;

describe('claim content', () => {
  it('is the JSON of [type, ...fields] for any ids (the charge fast path included)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.boolean(), (userId, merchantId, withCurrency) => {
        const e = charge({ userId, merchantId, ...(withCurrency ? { currency: 'CNY' } : {}) });
        expect(claimContent(e, 123)).toBe(JSON.stringify(['charge', userId, merchantId, 'AAAAAAAAAAAAAAAA', 100, 'CNY', 123]));
      }),
      { numRuns: 3_000 },
    );
  });

  it('compares instants as instants, and a missing currency as CNY', () => {
    const a = { type: 'repayment', eventId: 'r', userId: 'u', amount: 5, dueAt: '2026-03-10T00:00:00+08:00', paidAt: '2026-03-09T16:00:00Z', occurredAt: 'x' } as never;
    const b = { type: 'repayment', eventId: 'r', userId: 'u', amount: 5, dueAt: '2026-03-09T16:00:00.000Z', paidAt: '2026-03-10T00:00:00+08:00', occurredAt: 'y' } as never;
    expect(claimContent(a, 1)).toBe(claimContent(b, 1));
    expect(claimContent(charge(), 1)).toBe(claimContent(charge({ currency: 'CNY' }), 1));
  });

  it('names the fields that differ, never their values', () => {
    const first = claimContent(charge(), 1);
    expect(differingFields(first, claimContent(charge({ amount: 90_000_000, userId: 'u-9' }), 2))).toEqual(['userId', 'amount', 'occurredAt']);
    expect(differingFields(first, claimContent({ type: 'account_opened', eventId: 'e-1', userId: 'u-1', channel: 'invited', quota: 1, occurredAt: 'x' } as never, 1))).toEqual(['type']);
    expect(conflictReason(['amount'])).toBe('eventId reused with other content: amount differs from the event first accepted with this eventId');
    expect(conflictReason(['userId', 'card'])).not.toMatch(/u-1|AAAA/);
  });
});

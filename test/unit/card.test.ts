import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CardHasher, cardLast4, maskCardNumbers } from '../../src/events/card.ts';
import { safeRaw } from '../../src/deadletter/dead-letters.ts';

describe('card handling', () => {
  it('hashes cards with a secret: stable, short, not the number', () => {
    const a = new CardHasher('secret-one-is-long-enough');
    const b = new CardHasher('secret-two-is-long-enough');
    const token = a.token('6222021234567890128');
    expect(token).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(a.token('6222021234567890128')).toBe(token);
    expect(b.token('6222021234567890128')).not.toBe(token);
    expect(token).not.toContain('7890128');
  });

  it('tokens are HMAC-SHA256 exactly, for any card id and secret (short, long, non-ASCII)', () => {
    const reference = (secret: string, card: string) => createHmac('sha256', secret).update(card).digest('base64url').slice(0, 16);
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 100 }), fc.string({ unit: 'binary', maxLength: 200 }), (secret, card) => {
        expect(new CardHasher(secret).token(card)).toBe(reference(secret, card));
      }),
      { numRuns: 500 },
    );
    const hasher = new CardHasher('密钥-'.repeat(30));
    for (const card of ['6222021234567890128', '', 'x'.repeat(85), 'x'.repeat(86), '卡'.repeat(85), '卡'.repeat(200)]) {
      expect(hasher.token(card)).toBe(reference('密钥-'.repeat(30), card));
    }
  });

  it('shows at most the last four characters', () => {
    expect(cardLast4('6222021234567890128')).toBe('****0128');
    expect(cardLast4('1234')).toBe('****');
  });

  it('masks digit runs that could be card numbers', () => {
    expect(maskCardNumbers('card 6222 0212 3456 7890 and 4111-1111-1111-1111 amount 12345')).toBe(
      'card [masked …7890] and [masked …1111] amount 12345',
    );
  });

  it('keeps no card number in dead-letter payloads, parsed or not', () => {
    expect(safeRaw({ cardId: '6222021234567890128', amount: -1 })).toBe('{"cardId":"****0128","amount":-1}');
    expect(safeRaw('{"cardId":"6222021234567890128","amount":')).toBe('{"cardId":"****0128","amount":');
    expect(safeRaw('x'.repeat(5000)).length).toBeLessThan(2100);
  });
});

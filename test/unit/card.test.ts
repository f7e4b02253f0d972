import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CardHasher, cardLast4, findCardNumber, maskCardNumbers, normalizeCard, tokenizeCharge } from '../../src/events/card.ts';
import { luhnCheckDigit } from '../../src/events/synthetic.ts';
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

  it('tokens are HMAC-SHA256 of the normalised card exactly, for any card id and secret (short, long, non-ASCII)', () => {
    const reference = (secret: string, card: string) => createHmac('sha256', secret).update(normalizeCard(card)).digest('base64url').slice(0, 16);
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

  it.each([
    ['plain', '4111111111111111'],
    ['single spaces', '4111 1111 1111 1111'],
    ['double spaces', '4111  1111  1111  1111'],
    ['dashes', '4111-1111-1111-1111'],
    ['spaced dashes', '4111 - 1111 - 1111 - 1111'],
    ['dots', '4111.1111.1111.1111'],
    ['full-width digits', '４１１１１１１１１１１１１１１１'],
    ['full-width, ideographic spaces', '４１１１\u3000１１１１\u3000１１１１\u3000１１１１'],
    ['en dashes', '4111\u20131111\u20131111\u20131111'],
    ['zero-width spaces', '4111\u200b1111\u200b1111\u200b1111'],
    ['mathematical digits', '𝟒𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏'],
    ['a 12-digit run', '411111111111'],
  ])('masks a card written with %s, keeping only its last four and the text around it', (_form, card) => {
    const masked = maskCardNumbers(`before ${card} ａｆｔｅｒ`);
    expect(masked).toBe('before [masked …1111] ａｆｔｅｒ');
  });

  it('leaves text without 12 digits in a run exactly as it was (full-width letters too)', () => {
    for (const text of ['order 12345678901 at 10:00', 'ｕｓｅｒ－１２３', 'balance 1,000,000,000,000 fen', '41111 1111', '']) {
      expect(maskCardNumbers(text)).toBe(text);
    }
    // Three separators join a run, four end it.
    expect(maskCardNumbers('4111    1111    1111    1111')).toBe('4111    1111    1111    1111');
  });

  it('masks whatever the text around it: property over random text with a card spliced in', () => {
    const forms = fc.constantFrom(
      (d: string) => d,
      (d: string) => d.replace(/(\d{4})(?=\d)/g, '$1 '),
      (d: string) => d.replace(/(\d{4})(?=\d)/g, '$1  '),
      (d: string) => d.replace(/(\d{4})(?=\d)/g, '$1-'),
      (d: string) => d.replace(/(\d{4})(?=\d)/g, '$1.'),
      (d: string) => d.replace(/\d/g, (c) => String.fromCharCode(0xff10 + Number(c))),
    );
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), forms, (a, b, form) => {
        const out = maskCardNumbers(`${a} ${form('6222020000000017')} ${b}`);
        expect(out.normalize('NFKC').replace(/[^0-9]/g, '')).not.toContain('622202000000');
      }),
      { numRuns: 500 },
    );
  });

  it('keeps no card number in dead-letter payloads, parsed or not', () => {
    expect(safeRaw({ cardId: '6222021234567890128', amount: -1 })).toBe('{"cardId":"****0128","amount":-1}');
    expect(safeRaw('{"cardId":"6222021234567890128","amount":')).toBe('{"cardId":"****0128","amount":');
    expect(safeRaw('x'.repeat(5000)).length).toBeLessThan(2100);
  });
});

/** `body` with its Luhn check digit appended. */
const luhn = (body: string) => body + luhnCheckDigit(body);
/** Same digits, last one changed: fails Luhn. */
const notLuhn = (card: string) => card.slice(0, -1) + String((Number(card.slice(-1)) + 1) % 10);

describe('card normalisation (one card, one token, one label)', () => {
  const cards = new CardHasher('a-test-secret-of-enough-length');
  const plain = '4111111111111111';
  it.each([
    ['4111111111111111'],
    ['4111 1111 1111 1111'],
    ['4111  1111  1111  1111'],
    ['4111-1111-1111-1111'],
    ['4111.1111.1111.1111'],
    [' 4111 1111 1111 1111 '],
    ['４１１１１１１１１１１１１１１１'],
    ['４１１１　１１１１　１１１１　１１１１'],
    ['４１１１－１１１１－１１１１－１１１１'],
    ['4111\u00a01111\u00a01111\u00a01111'],
    ['4111\u200b1111\u200b1111\u200b1111'],
    ['4111\u20131111\u20131111\u20131111'],
  ])('%j gets the token and label of 4111111111111111', (form) => {
    expect(normalizeCard(form)).toBe(plain);
    expect(cards.token(form)).toBe(cards.token(plain));
    expect(cardLast4(form)).toBe('****1111');
    const charge = { type: 'charge' as const, eventId: 'e', userId: 'u', merchantId: 'm', cardId: form, amount: 1, occurredAt: '2026-03-10T10:00:00Z' };
    const queued = tokenizeCharge(charge, cards);
    expect(queued.cardToken).toBe(cards.token(plain));
    expect(queued.cardLast4).toBe('****1111');
  });

  it('keeps other card ids as NFKC writes them, and different cards apart', () => {
    expect(normalizeCard('ｃａｒｄ－７')).toBe('card-7');
    expect(normalizeCard('card 7')).toBe('card 7');
    expect(normalizeCard('---')).toBe('---');
    expect(normalizeCard('4111 1111 1111 111x')).toBe('4111 1111 1111 111x');
    expect(cards.token('4111 1111 1111 1111')).not.toBe(cards.token('4111 1111 1111 1112'));
    expect(cards.token('ｃａｒｄ－７')).toBe(cards.token('card-7'));
  });

  it('returns a plain ASCII digit string as the same string (the hot path)', () => {
    const card = '6222021234567890128';
    expect(normalizeCard(card)).toBe(card);
  });
});

describe('card number detection', () => {
  // One Luhn-valid number per network prefix, 16 digits unless the network is shorter.
  const prefixes = ['4', '51', '52', '53', '54', '55', '2221', '2720', '34', '37', '35', '6011', '65', '62'];
  it.each(prefixes)('finds a Luhn-valid number starting %s, and not the same number failing Luhn', (prefix) => {
    const card = luhn(prefix.padEnd(15, '7'));
    expect(findCardNumber(card)).toBe(true);
    expect(findCardNumber(`user-${card}`)).toBe(true);
    expect(findCardNumber(notLuhn(card))).toBe(false);
  });

  it.each(['1', '2220', '2721', '30', '36', '38', '50', '56', '60', '6010', '64', '66', '7', '8', '9', '0'])('does not take a Luhn-valid number starting %s for a card', (prefix) => {
    expect(findCardNumber(luhn(prefix.padEnd(15, '7')))).toBe(false);
  });

  it('takes 13 to 19 digits, not 12 or 20', () => {
    for (let n = 12; n <= 20; n++) {
      expect(findCardNumber(luhn('4'.padEnd(n - 1, '3'))), `${n} digits`).toBe(n >= 13 && n <= 19);
    }
  });

  it('allows one separator between digits, not two', () => {
    const card = luhn('453201511283036'); // 16 digits
    const group = (sep: string) => card.replace(/(\d{4})(?=\d)/g, `$1${sep}`);
    for (const sep of [' ', '-', '.', '\t', '\u3000', '\u00a0', '\u2013', '\u200b', '－', '．']) expect(findCardNumber(group(sep)), JSON.stringify(sep)).toBe(true);
    for (const sep of ['  ', '--', '. ', ' - ', '/', ',', '_', 'x']) expect(findCardNumber(group(sep)), JSON.stringify(sep)).toBe(false);
    // One separator anywhere, not only every four digits.
    expect(findCardNumber(`${card.slice(0, 3)}-${card.slice(3, 9)} ${card.slice(9)}`)).toBe(true);
  });

  it('reads digits after NFKC (full-width, mathematical)', () => {
    const card = luhn('622202000000001');
    expect(findCardNumber(card.replace(/\d/g, (c) => String.fromCharCode(0xff10 + Number(c))))).toBe(true);
    expect(findCardNumber([...card].map((c) => String.fromCodePoint(0x1d7ce + Number(c))).join(''))).toBe(true);
  });

  it('passes ordinary ids: short numbers, timestamps, UUIDs without a card-like run, 20-digit order numbers', () => {
    let ts = 1_795_253_110_960; // an epoch-ms timestamp that passes Luhn (starts with 1: no network)
    while (!isLuhnTs(ts)) ts++;
    for (const idText of ['u-1', 'order-2026031012345', String(ts), `evt-${ts}-17`, '9876543210987654321', '12345678901234567890', 'a1b2c3d4-e5f6-4789-abcd-ef0123456789', 'ｕｓｅｒ－１２３', '']) {
      expect(findCardNumber(idText), idText).toBe(false);
    }
  });

  // Before: 622 of 1,000,000 random v4 UUIDs held a card-like run (digit groups joined across dashes).
  it('passes UUIDs whose digit groups join into a card-like run; a card beside one is still found', () => {
    const run = luhn('453201511283036'); // 16 digits: 8-4-4 groups of a UUID
    const uuid = `${run.slice(0, 8)}-${run.slice(8, 12)}-${run.slice(12, 16)}-8abc-0123456789ab`;
    expect(findCardNumber(uuid)).toBe(false);
    expect(findCardNumber(`evt-${uuid}`)).toBe(false);
    // A card beside a UUID is still found.
    expect(findCardNumber(`${uuid} ${run}`)).toBe(true);
    let found = 0;
    for (let i = 0; i < 20_000; i++) if (findCardNumber(crypto.randomUUID())) found++;
    expect(found).toBe(0);
  });

  it('a maximal run decides: a card glued to more digits is a longer number', () => {
    const card = luhn('411111111111111');
    expect(findCardNumber(`${card}0000`)).toBe(false); // 20 digits
    expect(findCardNumber(`${card}x0000`)).toBe(true);
    expect(findCardNumber(`12${card}`)).toBe(false); // starts with 1, 18 digits
  });
});

function isLuhnTs(ts: number): boolean {
  const d = String(ts);
  return luhnCheckDigit(d.slice(0, -1)) === d.slice(-1);
}

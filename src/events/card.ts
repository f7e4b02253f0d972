/**
 * Card numbers never reach Redis or the logs. State keys use a keyed HMAC of the card; people see at most
 * the last four characters. Anything free-form (dead-letter payloads, reasons, log lines) has long digit runs masked.
 * Producers replace the card by `cardToken` + `cardLast4` before an event is queued (`tokenizeCharge`), because
 * queue payloads rest in Redis too.
 *
 * This module owns what "a card number" is (contract v1.1, issue 11 findings 6 and 7):
 * - `normalizeCard`: one card, however it is written, is one card (one token, one label);
 * - `findCardNumber`: an id holding a card number, which the contract rejects;
 * - `maskCardNumbers`: free text with every card-like digit run reduced to its last four.
 * All three read digits after Unicode NFKC (full-width ４, circled ④, mathematical 𝟒 are digits) and share one set
 * of separators: whitespace, dashes, dots, and invisible format characters (a zero-width space between digits must
 * not make another card). The common case (ASCII, few digits) never pays for NFKC or a regular expression.
 */
import * as crypto from 'node:crypto';
import type { ChargeEvent, QueuedCharge } from './schema.ts';

const BLOCK = 64; // SHA-256 block size, bytes
const MAX_FAST_CARD_BYTES = 256;

/**
 * Stable, secret-keyed tokens for cards: HMAC-SHA256, base64url, first 16 characters (96 bits), URL-safe and short
 * enough for compact Redis encodings.
 *
 * The producer tokenizes every event, so HMAC is computed here from its definition (RFC 2104) with two one-shot
 * `crypto.hash` calls over preallocated buffers: the same bytes as `createHmac` (a test holds them equal) at about
 * half its cost, which is mostly creating the HMAC object per call.
 */
export class CardHasher {
  private readonly inner: Buffer | undefined;
  private readonly outer: Buffer | undefined;

  constructor(private readonly secret: string) {
    const oneShot = typeof crypto.hash === 'function'; // Node ≥ 20.12
    if (!oneShot) return;
    let key = Buffer.from(secret, 'utf8');
    if (key.length > BLOCK) key = crypto.createHash('sha256').update(key).digest();
    this.inner = Buffer.alloc(BLOCK + MAX_FAST_CARD_BYTES);
    this.outer = Buffer.alloc(BLOCK + 32);
    for (let i = 0; i < BLOCK; i++) {
      this.inner[i] = (key[i] ?? 0) ^ 0x36;
      this.outer[i] = (key[i] ?? 0) ^ 0x5c;
    }
  }

  /** The token of the card as `normalizeCard` writes it: `4111 1111 1111 1111` and `4111111111111111` share one. */
  token(cardId: string): string {
    return this.hmac(normalizeCard(cardId));
  }

  private hmac(cardId: string): string {
    const { inner, outer } = this;
    // Worst case 3 bytes per UTF-16 unit: longer ids take the ordinary path.
    if (inner === undefined || outer === undefined || cardId.length * 3 > MAX_FAST_CARD_BYTES) {
      return crypto.createHmac('sha256', this.secret).update(cardId).digest('base64url').slice(0, 16);
    }
    const n = inner.write(cardId, BLOCK, 'utf8');
    crypto.hash('sha256', inner.subarray(0, BLOCK + n), 'buffer').copy(outer, BLOCK);
    return crypto.hash('sha256', outer, 'base64url').slice(0, 16);
  }
}

/** The charge with its card number replaced by the keyed hash and the last four characters (both normalised). */
export function tokenizeCharge(event: ChargeEvent, cards: CardHasher): QueuedCharge {
  // A literal, not rest/spread: this runs for every event the producer sends.
  const { type, eventId, userId, merchantId, cardId, amount, currency, occurredAt } = event;
  const card = normalizeCard(cardId);
  const cardToken = cards.token(card);
  const last4 = cardLast4(card);
  return currency === undefined
    ? { type, eventId, userId, merchantId, amount, occurredAt, cardToken, cardLast4: last4 }
    : { type, eventId, userId, merchantId, amount, currency, occurredAt, cardToken, cardLast4: last4 };
}

/**
 * "****1234": the last four characters of the normalised card at most, and only when it is long enough to hide
 * the rest (so `４１１１ … １１１１` and `4111-…-1111` show "****1111" like `4111…1111`).
 */
export function cardLast4(cardId: string): string {
  const card = normalizeCard(cardId);
  return card.length > 4 ? `****${card.slice(-4)}` : '****';
}

// Separators, after NFKC: whitespace, dashes (hyphen-minus, Unicode dash punctuation, minus sign), dots (full stop,
// middle dots, ideographic full stop) and invisible format characters (zero-width space, soft hyphen, joiners).
const SEPARATOR = String.raw`\s.\p{Pd}\u2212\u00B7\u2027\u30FB\u3002\p{Cf}`;
const IS_SEPARATOR = new RegExp(`^[${SEPARATOR}]$`, 'u');
const DIGITS_AND_SEPARATORS = new RegExp(`^[${SEPARATOR}]*[0-9][0-9${SEPARATOR}]*$`, 'u');
const NOT_A_DIGIT = /[^0-9]/g;

const isAsciiDigit = (c: number) => c >= 48 && c <= 57;

/**
 * The card as it is hashed and labelled: Unicode NFKC, then, when only digits, whitespace, dashes and dots remain,
 * the digits alone. Other ids keep their NFKC form. A plain ASCII digit string (what nearly every event carries)
 * is returned as it is, without NFKC.
 */
export function normalizeCard(cardId: string): string {
  const n = cardId.length;
  let i = 0;
  while (i < n && isAsciiDigit(cardId.charCodeAt(i))) i++;
  if (i === n && n > 0) return cardId;
  const nfkc = cardId.normalize('NFKC');
  return DIGITS_AND_SEPARATORS.test(nfkc) ? nfkc.replace(NOT_A_DIGIT, '') : nfkc;
}

/** A separator between digits (after NFKC), for the character code `c` at `s[i]` (astral code points included). */
function isSeparatorAt(s: string, i: number, c: number): boolean {
  if (c < 128) return c === 32 || c === 45 || c === 46 || (c >= 9 && c <= 13);
  return IS_SEPARATOR.test(String.fromCodePoint(s.codePointAt(i)!));
}

/** Luhn checksum over an ASCII digit string. */
export function passesLuhn(digits: string): boolean {
  let sum = 0;
  for (let i = digits.length - 1, double = false; i >= 0; i--, double = !double) {
    let d = digits.charCodeAt(i) - 48;
    if (double && (d *= 2) > 9) d -= 9;
    sum += d;
  }
  return digits.length > 1 && sum % 10 === 0;
}

/** Issuer ranges of the card networks: Visa 4, Mastercard 51–55 and 2221–2720, Amex 34/37, JCB 35, Discover 6011/65, UnionPay 62. */
export function inCardNetworkRange(digits: string): boolean {
  const two = (digits.charCodeAt(0) - 48) * 10 + (digits.charCodeAt(1) - 48);
  if (two >= 40 && two <= 49) return true;
  if ((two >= 51 && two <= 55) || two === 34 || two === 37 || two === 35 || two === 65 || two === 62) return true;
  const four = two * 100 + (digits.charCodeAt(2) - 48) * 10 + (digits.charCodeAt(3) - 48);
  return four === 6011 || (four >= 2221 && four <= 2720);
}

/** 13–19 ASCII digits that pass Luhn and start in a card network's range. */
export function isCardNumber(digits: string): boolean {
  return digits.length >= 13 && digits.length <= 19 && inCardNetworkRange(digits) && passesLuhn(digits);
}

/** How many ASCII digits `text` holds, or -1 when it is not all ASCII (then it needs NFKC first). One pass. */
function asciiDigits(text: string): number {
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (isAsciiDigit(c)) digits++;
    else if (c > 127) return -1;
  }
  return digits;
}

/**
 * Whether `text` holds a card number (contract v1.1): after NFKC, a maximal run of 13–19 digits, with at most one
 * separator (whitespace, dash, dot) between two digits, that is a card number (`isCardNumber`). A longer run is
 * not a card (an id of 20 digits), nor are digits split by two separators, nor the digit groups of a UUID. ASCII
 * text with fewer than 13 digits (almost every id) is answered by one pass over its characters.
 */
export function findCardNumber(text: string): boolean {
  const digits = asciiDigits(text);
  const ascii = digits >= 0;
  if (ascii && digits < 13) return false;
  let s = ascii ? text : text.normalize('NFKC');
  // A canonical UUID is an id, not a card written out: its digit groups joined across dashes look like one in
  // about 1,600 random UUIDs, which would refuse valid events. (An all-digit one is a 32-digit run: no card either.)
  if (s.length >= 36 && s.includes('-')) s = s.replace(UUID, (u) => 'u'.repeat(u.length));
  let run = '';
  let afterSeparator = false;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : -1;
    if (isAsciiDigit(c)) {
      run += s[i];
      afterSeparator = false;
      continue;
    }
    if (c >= 0 && run !== '' && !afterSeparator && isSeparatorAt(s, i, c)) {
      afterSeparator = true;
      if (c >= 0xd800 && c <= 0xdbff) i++; // an astral format character is two code units
      continue;
    }
    if (isCardNumber(run)) return true;
    run = '';
    afterSeparator = false;
  }
  return false;
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

// Twelve or more digits with up to three separators between two of them ("4111  1111", "4111 - 1111"): masking
// is wider than detection, since it only ever hides text.
const MASK_RUN = new RegExp(`[0-9](?:[${SEPARATOR}]{0,3}[0-9]){11,}`, 'gu');
const MASK_MIN_DIGITS = 12;

/**
 * Masks every run of 12 or more digits (after NFKC; split by up to three whitespace, dash, dot or invisible
 * characters) keeping its last four: "[masked …1111]". The rest of the text is left exactly as it was (not
 * normalised). ASCII text with fewer than 12 digits is returned untouched after one pass.
 */
export function maskCardNumbers(text: string): string {
  const digits = asciiDigits(text);
  if (digits >= 0) return digits < MASK_MIN_DIGITS ? text : text.replace(MASK_RUN, masked);
  // NFKC code point by code point, remembering where each normalised character came from, so a match in the
  // normalised text replaces exactly its source in the original.
  let mapped = '';
  const from: number[] = [];
  const to: number[] = [];
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i)!;
    const width = cp > 0xffff ? 2 : 1;
    const piece = cp < 128 ? text[i]! : String.fromCodePoint(cp).normalize('NFKC');
    for (let k = 0; k < piece.length; k++) {
      from.push(i);
      to.push(i + width);
    }
    mapped += piece;
    i += width;
  }
  let out = '';
  let last = 0;
  for (const m of mapped.matchAll(MASK_RUN)) {
    const start = from[m.index]!;
    if (start < last) continue; // inside a source character already masked
    out += text.slice(last, start) + masked(m[0]);
    last = to[m.index + m[0].length - 1]!;
  }
  return last === 0 && out === '' ? text : out + text.slice(last);
}

function masked(run: string): string {
  return `[masked …${run.replace(NOT_A_DIGIT, '').slice(-4)}]`;
}

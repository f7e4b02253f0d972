/**
 * Removes card data from anything shown to people (logs, the queue dashboard): card fields keep at most their last
 * four characters, and long digit runs in any other string (separated, full-width: `maskCardNumbers`), in key names
 * and in numbers that are card numbers are masked. Queue jobs carry raw events, so this is the last guard between a
 * card number and an operator's screen.
 */
import { cardLast4, findCardNumber, maskCardNumbers } from './card.ts';

/** Field names that hold a card number in events or payloads. */
const CARD_FIELDS = new Set(['cardId', 'cardNumber', 'card_number', 'pan']);
const MAX_DEPTH = 20;

/** A deep copy of `value` with card data masked; the input is not modified. */
export function scrubCardData(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return maskCardNumbers(value);
  // A card number sent as a JSON number; timestamps and amounts (no network prefix, or not Luhn-valid) stay numbers.
  if (typeof value === 'number' || typeof value === 'bigint') return isCardLikeNumber(value) ? maskCardNumbers(String(value)) : value;
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= MAX_DEPTH) return '[nested too deep]';
  if (Array.isArray(value)) return value.map((v) => scrubCardData(v, depth + 1));
  if (value instanceof Error) {
    // Same prototype, so loggers still see an Error of its own class.
    const copy = Object.create(Object.getPrototypeOf(value) as object) as Error;
    for (const [k, v] of Object.entries(value)) (copy as unknown as Record<string, unknown>)[k] = scrubCardData(v, depth + 1);
    Object.defineProperty(copy, 'message', { value: maskCardNumbers(value.message), enumerable: false, writable: true });
    Object.defineProperty(copy, 'stack', { value: value.stack && maskCardNumbers(value.stack), enumerable: false, writable: true });
    return copy;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[maskCardNumbers(k)] = CARD_FIELDS.has(k) && (typeof v === 'string' || typeof v === 'number') ? cardLast4(String(v)) : scrubCardData(v, depth + 1);
  }
  return out;
}

/** An integer whose digits are a card number (`findCardNumber`). */
export function isCardLikeNumber(value: number | bigint): boolean {
  return (typeof value === 'bigint' || Number.isInteger(value)) && value >= 1e12 && findCardNumber(String(value));
}

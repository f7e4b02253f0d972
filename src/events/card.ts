/**
 * Card numbers never reach Redis or the logs. State keys use a keyed HMAC of the card; people see at most
 * the last four characters. Anything free-form (dead-letter payloads) has long digit runs masked.
 * Producers replace the card by `cardToken` + `cardLast4` before an event is queued (`tokenizeCharge`), because
 * queue payloads rest in Redis too.
 */
import { createHmac } from 'node:crypto';
import type { ChargeEvent, QueuedCharge } from './schema.ts';

export class CardHasher {
  constructor(private readonly secret: string) {}

  /** Stable, secret-keyed token for a card: 96 bits, URL-safe, short enough for compact Redis encodings. */
  token(cardId: string): string {
    return createHmac('sha256', this.secret).update(cardId).digest('base64url').slice(0, 16);
  }
}

/** The charge with its card number replaced by the keyed hash and the last four characters. */
export function tokenizeCharge(event: ChargeEvent, cards: CardHasher): QueuedCharge {
  // A literal, not rest/spread: this runs for every event the producer sends.
  const { type, eventId, userId, merchantId, cardId, amount, currency, occurredAt } = event;
  const cardToken = cards.token(cardId);
  const last4 = cardLast4(cardId);
  return currency === undefined
    ? { type, eventId, userId, merchantId, amount, occurredAt, cardToken, cardLast4: last4 }
    : { type, eventId, userId, merchantId, amount, currency, occurredAt, cardToken, cardLast4: last4 };
}

/** "****1234": the last four characters at most, and only when the card is long enough to hide the rest. */
export function cardLast4(cardId: string): string {
  return cardId.length > 4 ? `****${cardId.slice(-4)}` : '****';
}

/** Masks every run of 12 or more digits (optionally split by spaces or dashes) keeping its last four. */
export function maskCardNumbers(text: string): string {
  return text.replace(/\d(?:[ -]?\d){11,}/g, (run) => {
    const digits = run.replace(/\D/g, '');
    return `[masked …${digits.slice(-4)}]`;
  });
}

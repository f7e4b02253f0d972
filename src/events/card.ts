/**
 * Card numbers never reach Redis or the logs. State keys use a keyed HMAC of the card; people see at most
 * the last four characters. Anything free-form (dead-letter payloads) has long digit runs masked.
 *
 * Producers replace the card by its token form `hmac:<token>[:<last4>]` before an event is queued (queue payloads
 * rest in Redis too); `token` and `cardLast4` read that form back, so a card is the same card whichever way its
 * events arrive.
 */
import { createHmac } from 'node:crypto';

const TOKEN_FORM = /^hmac:([A-Za-z0-9_-]{16})(?::([^:]{1,4}))?$/;

export class CardHasher {
  constructor(private readonly secret: string) {}

  /** Stable, secret-keyed token for a card: 96 bits, URL-safe, short enough for compact Redis encodings. */
  token(cardId: string): string {
    const tokenized = TOKEN_FORM.exec(cardId);
    if (tokenized) return tokenized[1]!;
    return createHmac('sha256', this.secret).update(cardId).digest('base64url').slice(0, 16);
  }

  /** The card as it may be queued: `hmac:<token>:<last4>` (no last four for cards of four characters or fewer). */
  tokenize(cardId: string): string {
    if (TOKEN_FORM.test(cardId)) return cardId;
    return `hmac:${this.token(cardId)}${cardId.length > 4 ? `:${cardId.slice(-4)}` : ''}`;
  }
}

/** "****1234": the last four characters at most, and only when the card is long enough to hide the rest. */
export function cardLast4(cardId: string): string {
  const tokenized = TOKEN_FORM.exec(cardId);
  if (tokenized) return tokenized[2] ? `****${tokenized[2]}` : '****';
  return cardId.length > 4 ? `****${cardId.slice(-4)}` : '****';
}

/** Masks every run of 12 or more digits (optionally split by spaces or dashes) keeping its last four. */
export function maskCardNumbers(text: string): string {
  return text.replace(/\d(?:[ -]?\d){11,}/g, (run) => {
    const digits = run.replace(/\D/g, '');
    return `[masked …${digits.slice(-4)}]`;
  });
}

/** Queue payloads at rest: after a batch, no card number stays in clear, in the card field or in any other. */
import { describe, expect, it } from 'vitest';
import { CardHasher, tokenizeCharge } from '../../src/events/card.ts';
import { mayHoldCardData, scrubBatch } from '../../src/pipeline/scrub.ts';

const cards = new CardHasher('a-test-secret-of-enough-length');
const CARD = '4111111111111111';
const at = '2026-03-10T10:00:00+08:00';
const charge = { type: 'charge' as const, eventId: 'e1', userId: 'u', merchantId: 'm', cardId: CARD, amount: 100, occurredAt: at };
const opened = { type: 'account_opened', eventId: 'e2', userId: 'u', channel: 'invited', quota: 500_000, occurredAt: at };
const digitsOf = (v: unknown) => JSON.stringify(v).normalize('NFKC').replace(/[^0-9]/g, '');

describe('scrubBatch', () => {
  it('drops fields outside the contract from valid events of any type, queued charges included', () => {
    const queued = tokenizeCharge(charge, cards);
    const data = { v: 1, events: [{ ...opened, note: CARD }, { ...queued, pan: '4111 1111 1111 1111' }, opened], enqueuedAt: 1 };
    expect(mayHoldCardData(data)).toBe(true);
    const scrubbed = scrubBatch(data, cards) as { events: unknown[] };
    expect(scrubbed.events).toEqual([opened, queued, opened]);
    expect(digitsOf(scrubbed)).not.toContain('41111111');
  });

  it('tokenizes raw cards however written, and masks ids holding cards (rejected events)', () => {
    const data = { v: 1, events: [{ ...charge, cardId: '４１１１ １１１１ １１１１ １１１１' }, { ...opened, userId: '4111.1111.1111.1111' }], enqueuedAt: 1 };
    const scrubbed = scrubBatch(data, cards) as { events: unknown[] };
    expect(scrubbed.events[0]).toEqual(tokenizeCharge(charge, cards));
    expect(typeof scrubbed.events[1]).toBe('string');
    expect(digitsOf(scrubbed)).not.toContain('41111111');
  });

  it('leaves what our producer queues alone, and says so cheaply', () => {
    const data = { v: 1, events: [tokenizeCharge(charge, cards), opened], enqueuedAt: 1 };
    expect(mayHoldCardData(data)).toBe(false);
    expect(scrubBatch(data, cards)).toBeNull();
    for (const odd of [{ v: 1 }, { events: [null] }, { events: [{ type: 'toString' }] }, { events: [{ ...opened, type: 'chargeback' }] }, { events: [charge] }]) {
      expect(mayHoldCardData(odd), JSON.stringify(odd)).toBe(true);
    }
  });
});

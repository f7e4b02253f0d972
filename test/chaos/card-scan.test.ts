import { expect, test } from 'vitest';
import { CardHasher, cardLast4, tokenizeCharge } from '../../src/events/card.ts';
import { isLuhnValid, syntheticPan } from '../../src/events/synthetic.ts';
import { scrubBatch } from '../../src/pipeline/scrub.ts';
import { CARD_FORMS, cardScanScenario, CardScanner } from './card-scan.ts';

const PAN = syntheticPan(12, 0);

test('the scanner finds a sent card in every written form, inside Redis text, JSON and AOF bytes', () => {
  const s = new CardScanner(new Set([PAN]));
  for (const [name, form] of Object.entries(CARD_FORMS)) s.scan(name, `{"note":"x ${form(PAN)} y"}`);
  expect(s.result.knownCardHits.map((h) => h.split(':')[0])).toEqual(expect.arrayContaining(Object.keys(CARD_FORMS)));
  const clean = new CardScanner(new Set([PAN]));
  clean.scan('masked', `{"note":"x [masked …${PAN.slice(-4)}] y","n":${PAN.slice(0, 12)}}`);
  expect(clean.result.knownCardHits).toEqual([]);
});

test('the scanner finds card numbers however they are written, and tells timestamps apart', () => {
  const s = new CardScanner(new Set([PAN]));
  s.scan('t', `plain ${PAN}, spaced ${PAN.replace(/(\d{4})(?=\d)/g, '$1 ')}, glued x${PAN}y`);
  expect(s.result.hits).toHaveLength(3);
  expect(s.result.knownCardHits).toHaveLength(3);
  const other = new CardScanner(new Set());
  // 4111111111111111 is the classic Luhn-valid test Visa; `ts` a Luhn-valid epoch-ms timestamp.
  let ts = 1_795_253_110_960;
  while (!isLuhnValid(String(ts))) ts++;
  other.scan('t', `visa 4111-1111-1111-1111 at ${ts}, stream id ${ts}-0, cpu 0.4111111111111111`);
  expect(other.result.hits).toEqual(['t: 4111-1111-1111-1111']);
  expect(other.result.timestampsExcluded).toBe(2);
  expect(other.result.fractionsExcluded).toBe(1);
  // A UUID whose middle groups are all digits (13 digits from "5-4369-8069-0730", Luhn-valid) is no card; a card
  // number written into UUID-shaped text is still found.
  const uuid = 'a1b2c3d5-4369-8069-0730-af8e7d6c5b4a';
  expect(isLuhnValid('5436980690730')).toBe(true);
  expect(PAN).toHaveLength(16);
  const third = new CardScanner(new Set([PAN]));
  third.scan('t', `lock ${uuid}:1, odd ${PAN.slice(0, 8)}-${PAN.slice(8, 12)}-${PAN.slice(12)}-abcd-ef0123456789`);
  expect(third.result.hits).toEqual([]);
  expect(third.result.uuidsExcluded).toBe(2);
  expect(third.result.knownCardHits).toEqual([`t: ${PAN}`]);
});

test('card tokens keep the card identity and its last four, and scrubbing leaves valid events deduplicable', () => {
  const cards = new CardHasher('a-test-secret-of-enough-length');
  const valid = { type: 'charge' as const, eventId: 'e1', userId: 'u', merchantId: 'm', cardId: PAN, amount: 100, occurredAt: '2026-03-10T10:00:00Z' };
  const queued = tokenizeCharge(valid, cards);
  expect(queued).toEqual({ type: 'charge', eventId: 'e1', userId: 'u', merchantId: 'm', amount: 100, occurredAt: '2026-03-10T10:00:00Z', cardToken: cards.token(PAN), cardLast4: cardLast4(PAN) });
  expect(JSON.stringify(queued)).not.toContain(PAN.slice(0, 12));

  const scrubbed = scrubBatch({ v: 1, events: [valid, { cardId: PAN, amount: -1 }], enqueuedAt: 1 }, cards) as { events: unknown[] };
  expect(scrubbed.events[0]).toEqual(queued);
  expect(JSON.stringify(scrubbed)).not.toContain(PAN);
  // What our producer queues holds no card number: nothing to rewrite.
  expect(scrubBatch({ v: 1, events: [queued], enqueuedAt: 1 }, cards)).toBeNull();
});

// Item 7 at small size (full size: npm run chaos).
test('no card number at rest: Redis (all types), AOF, logs, metrics, decisions and replay output hold none', async () => {
  const f = await cardScanScenario({ events: 2_000, users: 200, replayLines: 100 });
  expect(f.ownPathsHits).toEqual([]);
  expect(f.scan.hits).toEqual([]);
  expect(f.scan.knownCardHits).toEqual([]);
  // Positive control: a foreign producer's raw jobs did put cards in the AOF until it was rewritten, and the scan saw them.
  expect(f.foreignInTransitAofHits).toBeGreaterThan(0);
  expect(f.redisKeys).toBeGreaterThan(2_000);
  expect(f.logLines).toBeGreaterThan(0);
  // Ids holding a card come back rejected, dead-lettered naming the field (processor in this process + replay).
  expect(f.idsHoldingCardsDeadLettered).toBeGreaterThanOrEqual(f.idsHoldingCardsSent);
  // The operator surfaces were read, and held rows to scan.
  expect(f.cliOutputBytes).toBeGreaterThan(1_000);
  expect(f.dashboardBytes).toBeGreaterThan(1_000);
  // The archive held every decision and dead letter, and was scanned (CI has PostgreSQL; elsewhere it may be absent).
  if (process.env.CI === 'true') expect(f.archiveRows).toBeGreaterThan(4_000);
}, 120_000);

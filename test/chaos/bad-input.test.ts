import { describe, expect, test } from 'vitest';
import { parseEvent } from '../../src/events/schema.ts';
import { configGarbageCheck, deepElementCheck, ndjsonGarbageCheck, processorGarbageCheck, queueGarbageCheck } from './bad-input.ts';

// Item 5 at small size (full size: npm run chaos). Every check fails on the first counterexample.
describe('bad input at every entry: rejected with a reason, no crash, no state change, nothing lost after it', () => {
  test('ids that are not valid Unicode are rejected (they would share one Redis key)', () => {
    const e = { type: 'charge', eventId: 'a\uD800', userId: 'u\uDC00', merchantId: 'm', cardId: 'c1234567', amount: 1, occurredAt: '2026-03-10T10:00:00Z' };
    expect(parseEvent(e)).toEqual({ ok: false, reason: 'eventId is not valid Unicode (lone surrogate); userId is not valid Unicode (lone surrogate)', label: 'invalid_field' });
    expect(parseEvent({ ...e, eventId: 'a😀', userId: 'u' }).ok).toBe(true);
  });

  test('a type that is not a string is rejected, even one that cannot be printed', () => {
    expect(parseEvent({ type: { toString: 'charge' } })).toEqual({ ok: false, reason: 'type must be a string, got object', label: 'invalid_field' });
    expect(parseEvent({ type: Object.create(null) })).toEqual({ ok: false, reason: 'type must be a string, got object', label: 'invalid_field' });
  });

  test('queue payloads: generated batches straight into the processor', async () => {
    const f = await processorGarbageCheck({ runs: 300 });
    expect(f.rejected).toBeGreaterThan(0);
    expect(f.decided).toBeGreaterThan(0);
    expect(f.wholePayloadsRejected).toBeGreaterThan(0);
  }, 60_000);

  test('queue payloads: raw garbage jobs and unreadable payloads through real workers', async () => {
    const f = await queueGarbageCheck({ garbageJobs: 100, validEvents: 500 });
    expect(f.problems).toEqual([]);
    expect(f.failedJobs).toBe(0);
    expect(f.decisions).toBe(500);
  }, 60_000);

  // Before: a 6,000-deep element failed its whole batch (RangeError in the dead-letter payload text), valid events included.
  test('queue payloads: an element nested 6,000 deep is dead-lettered alone, the valid events of its batch are decided', async () => {
    const f = await deepElementCheck({ depth: 6_000, jobs: 4 });
    expect(f.problems).toEqual([]);
    expect(f.failedJobs).toBe(0);
    expect(f.deadLetters).toBe(f.deepElements);
    expect(f.decisions).toBe(f.validEvents);
  }, 60_000);

  test('NDJSON files: generated lines through the replay and its worker process', async () => {
    const f = await ndjsonGarbageCheck({ runs: 2, maxLines: 150 });
    expect(f.runs).toBe(2);
    expect(f.rejected).toBeGreaterThan(0);
    expect(f.decided).toBeGreaterThan(0);
  }, 60_000);

  test('configuration files: garbage at any path is a ConfigError or a valid configuration, never pollution', () => {
    const f = configGarbageCheck({ runs: 500 });
    expect(f.refused).toBeGreaterThan(0);
    expect(f.accepted).toBeGreaterThan(0);
    expect(f.protoAttempts).toBeGreaterThan(0);
  });
});

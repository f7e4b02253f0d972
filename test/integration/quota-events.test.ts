/** The credit-account events: validation, idempotency by eventId, and state-based rejection, on real Redis. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import { parseEvent } from '../../src/events/schema.ts';
import { dropContext, testContext } from '../helpers/context.ts';
import { opened, repayment } from '../helpers/quota.ts';
import { testBatch } from '../helpers/batch.ts';

let context: Context;
beforeEach(() => {
  context = testContext();
});
afterEach(async () => {
  await dropContext(context);
});

const processBatch = (events: unknown[], source: string) => context.processor.process(testBatch(events), source);

describe('validation', () => {
  const base = { eventId: 'e-1', userId: 'u-1', occurredAt: '2026-03-01T10:00:00.000+08:00' };
  const reasonOf = (event: Record<string, unknown>) => {
    const r = parseEvent({ ...base, ...event });
    return r.ok ? 'accepted' : r.reason;
  };

  it('accepts well-formed events of every new type', () => {
    expect(reasonOf({ type: 'account_opened', channel: 'invited', quota: 1_000_000 })).toBe('accepted');
    expect(reasonOf({ type: 'repayment', amount: 100, dueAt: '2026-03-10T00:00:00Z', paidAt: '2026-03-09T00:00:00+08:00' })).toBe('accepted');
    expect(reasonOf({ type: 'asset_snapshot', balance: 0, redeemed: 0 })).toBe('accepted');
    expect(reasonOf({ type: 'social_snapshot', friendsAdded: 0, momentsBlocked: false })).toBe('accepted');
  });

  it('rejects broken fields with a clear reason', () => {
    expect(reasonOf({ type: 'account_opened', channel: 'walk-in', quota: 1_000_000 })).toBe('channel must be "invited" or "applied"');
    expect(reasonOf({ type: 'account_opened', channel: 'invited', quota: 1000.5 })).toBe('quota must be a whole number of fen');
    expect(reasonOf({ type: 'account_opened', channel: 'invited' })).toBe('quota is missing');
    expect(reasonOf({ type: 'repayment', amount: 100, dueAt: '2026-03-10', paidAt: '2026-03-09T00:00:00Z' })).toMatch(/^dueAt "2026-03-10": expected an ISO-8601 instant/);
    expect(reasonOf({ type: 'repayment', amount: 0, dueAt: '2026-03-10T00:00:00Z', paidAt: '2026-03-09T00:00:00Z' })).toBe('amount must be at least 1 fen');
    expect(reasonOf({ type: 'asset_snapshot', balance: -1, redeemed: 0 })).toBe('balance must not be negative');
    expect(reasonOf({ type: 'asset_snapshot', balance: '100', redeemed: 0 })).toBe('balance must be a number of fen (integer)');
    expect(reasonOf({ type: 'social_snapshot', friendsAdded: 2.5, momentsBlocked: false })).toBe('friendsAdded must be a whole number');
    // Strict booleans: the string "false" is not false.
    expect(reasonOf({ type: 'social_snapshot', friendsAdded: 1, momentsBlocked: 'false' })).toBe('momentsBlocked must be true or false');
  });
});

describe('applying', () => {
  it('rejects a second opening for the same user when applied, dead-letters it once, and keeps the first account', async () => {
    const first = opened('u-1', '2026-03-01T10:00:00.000+08:00', 1_000_000);
    const second = opened('u-1', '2026-03-02T10:00:00.000+08:00', 300_000, 'applied');
    const results = await processBatch([first, second], 'test:batch-1');
    expect(results[0]).toEqual({ eventId: first.eventId, outcome: 'accepted' });
    expect(results[1]).toEqual({
      eventId: second.eventId,
      outcome: 'rejected',
      error: `a credit account is already open for user u-1 (event ${first.eventId} at 2026-03-01T10:00:00.000+08:00)`,
    });
    // The same batch delivered again (a worker died): the same answers, no second dead letter, no change.
    expect(await processBatch([first, second], 'test:batch-1')).toEqual(results);
    const letters = await context.deadLetters.list();
    expect(letters).toHaveLength(1);
    expect(letters[0]!.reason).toBe(results[1]!.error);
    const view = await context.quotaAccounts.show('u-1', context.calibrator);
    expect([view.channel, view.quota]).toEqual(['invited', 1_000_000]);
    const conflicts = (await context.metrics.eventsRejected.get()).values.find((v) => v.labels.reason === 'conflict');
    expect(conflicts?.value).toBe(1);
  });

  it('rejects a quota outside the channel band (both channels, both ends)', async () => {
    const events = [
      opened('u-a', '2026-03-01T10:00:00.000+08:00', 49_999, 'invited'),
      opened('u-b', '2026-03-01T10:00:00.000+08:00', 1_500_001, 'invited'),
      opened('u-c', '2026-03-01T10:00:00.000+08:00', 29_999, 'applied'),
      opened('u-d', '2026-03-01T10:00:00.000+08:00', 800_001, 'applied'),
      opened('u-e', '2026-03-01T10:00:00.000+08:00', 50_000, 'invited'),
      opened('u-f', '2026-03-01T10:00:00.000+08:00', 800_000, 'applied'),
    ];
    const results = await processBatch(events, 'test:bands');
    expect(results.map((r) => r.outcome)).toEqual(['rejected', 'rejected', 'rejected', 'rejected', 'accepted', 'accepted']);
    expect(results[0]!.error).toBe('quota 49999 fen is outside the invited band 50000–1500000 fen');
    expect(results[3]!.error).toBe('quota 800001 fen is outside the applied band 30000–800000 fen');
    // The account index, kept per shard: only the two accepted, each in its user's shard.
    const indexed = await Promise.all(context.keys.shardIds.map((s) => context.redis.zrange(context.keys.accountIndex(s), 0, -1)));
    expect(indexed.flat().sort()).toEqual(['u-e', 'u-f']);
    for (const user of ['u-e', 'u-f']) expect(indexed[context.keys.shardOf(user)]).toContain(user);
  });

  it('applies each eventId once: a repeat is a duplicate, other content is rejected naming the fields', async () => {
    const open = opened('u-2', '2026-03-01T10:00:00.000+08:00');
    const repay = repayment('u-2', '2026-03-10T00:00:00.000+08:00', '2026-03-09T00:00:00.000+08:00');
    await processBatch([open, repay], 'test:a');
    const same = await processBatch([open, { ...repay, paidAt: '2026-03-08T16:00:00Z' }], 'test:same');
    expect(same.map((r) => r.outcome)).toEqual(['accepted', 'accepted']);
    const again = await processBatch([{ ...open, quota: 70_000 }, { ...repay, amount: 99 }], 'test:b');
    expect(again.map((r) => r.outcome)).toEqual(['rejected', 'rejected']);
    expect(again.map((r) => r.error)).toEqual([
      'eventId reused with other content: quota differs from the event first accepted with this eventId',
      'eventId reused with other content: amount differs from the event first accepted with this eventId',
    ]);
    expect(await context.redis.zcard(context.keys.repayments('u-2'))).toBe(1);
    expect((await context.quotaAccounts.show('u-2', context.calibrator)).quota).toBe(1_000_000);
    expect((await context.metrics.duplicates.get()).values[0]!.value).toBe(2);
  });

  // Failed before contract v1.1: one user's on-time bill-42 kept another user's overdue bill-42 from counting.
  it('rejects a quota event reusing another user\'s eventId, and a charge reusing a non-charge eventId', async () => {
    const onTime = { ...repayment('u-4', '2026-03-10T00:00:00.000+08:00', '2026-03-09T00:00:00.000+08:00'), eventId: 'bill-42' };
    const overdue = { ...repayment('u-5', '2026-03-01T00:00:00.000+08:00', '2026-03-09T00:00:00.000+08:00'), eventId: 'bill-42' };
    const [, first, second] = await processBatch([opened('u-4', '2026-03-01T00:00:00.000+08:00'), onTime, overdue], 'test:e');
    expect(first!.outcome).toBe('accepted');
    expect(second).toMatchObject({ outcome: 'rejected', error: expect.stringMatching(/^eventId reused with other content: userId, dueAt differ/) });
    const openedEvent = { ...opened('u-6', '2026-03-01T10:00:00.000+08:00'), eventId: 'open-6' };
    const [, charged] = await processBatch(
      [openedEvent, { type: 'charge', eventId: 'open-6', userId: 'u-6', merchantId: 'm', cardId: 'c-1', amount: 100, occurredAt: '2026-03-01T11:00:00.000+08:00' }],
      'test:f',
    );
    expect(charged).toMatchObject({ outcome: 'rejected', error: 'eventId reused with other content: type differs from the event first accepted with this eventId' });
    expect(await context.redis.exists(context.keys.ruleState('u-6'))).toBe(0);
  });

  it('treats an eventId already decided as a charge as seen', async () => {
    const [decided] = await processBatch(
      [{ type: 'charge', eventId: 'shared-id', userId: 'u-3', merchantId: 'm', cardId: 'c-1', amount: 100, occurredAt: '2026-03-01T10:00:00.000+08:00' }],
      'test:c',
    );
    expect(decided!.outcome).toBe('approve');
    await processBatch([{ ...repayment('u-3', '2026-03-10T00:00:00Z', '2026-03-09T00:00:00Z'), eventId: 'shared-id' }], 'test:d');
    expect(await context.redis.exists(context.keys.repayments('u-3'))).toBe(0);
  });
});

/** The rules script against a real Redis, driven through the processor exactly as workers drive it. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import { claimLayout } from '../../src/decisions/claims.ts';
import { parseDecision } from '../../src/decisions/decision.ts';
import type { ChargeEvent } from '../../src/events/schema.ts';
import { parseRuleState } from '../../src/rules/rule-state.ts';
import { dropContext, testContext } from '../helpers/context.ts';
import { testBatch } from '../helpers/batch.ts';
import { decisionKey, decisionStreamEntries, decisionStreamLength, dueSettlements } from '../helpers/shards.ts';

let ctx: Context;
let seq = 0;

const charge = (over: Partial<ChargeEvent> = {}): ChargeEvent => ({
  type: 'charge',
  eventId: `e-${++seq}`,
  userId: 'u-1',
  merchantId: 'm-1',
  cardId: '6222021234567890128',
  amount: 10_000,
  occurredAt: '2026-03-10T10:00:00+08:00',
  ...over,
});

const run = (events: unknown[], source = `test:${++seq}`) => ctx.processor.process(testBatch(events), source);
const stored = async (eventId: string, userId = 'u-1') => parseDecision((await ctx.redis.get(decisionKey(ctx.keys, userId, eventId)))!);
const ruleState = async (userId = 'u-1') => parseRuleState(await ctx.redis.hgetall(ctx.keys.ruleState(userId)));
const dayTotals = async (userId = 'u-1') => Object.fromEntries((await ruleState(userId)).days);

beforeEach(() => {
  ctx = testContext();
});
afterEach(async () => {
  await dropContext(ctx);
});

describe('decision records', () => {
  it('stores an explainable decision and appends it to the stream', async () => {
    const [result] = await run([
      charge({ eventId: 'night', amount: 600_000, occurredAt: '2026-03-10T23:30:00+08:00' }),
    ]);
    expect(result).toEqual({ eventId: 'night', outcome: 'decline', rules: ['night_large_amount'], settleAt: null });
    const d = await stored('night');
    expect(d).toMatchObject({
      eventId: 'night',
      userId: 'u-1',
      merchantId: 'm-1',
      amount: 600_000,
      card: '****0128',
      outcome: 'decline',
      rules: ['night_large_amount'],
      observed: { cardCount: 1, dayTotalBefore: 0, localDate: '2026-03-10', localTime: '23:30:00' },
      settleAt: null,
      configVersion: ctx.settings.configVersion,
    });
    expect(d.reasons).toEqual([
      '6000.00 CNY at 23:30:00 local time, inside the night window 23:00–02:00 (decline at 5000.00 CNY or more)',
    ]);
    expect(Date.parse(d.decidedAt)).toBeGreaterThan(Date.now() - 60_000);

    const entries = await decisionStreamEntries(ctx.redis, ctx.keys);
    expect(entries).toHaveLength(1);
    expect(await ctx.redis.xlen(ctx.keys.decisionStream(ctx.keys.shardOf('u-1')))).toBe(1);
    expect(JSON.parse(entries[0]![1][1]!)).toEqual(d);
  });

  it('lists every rule that fired with what it observed', async () => {
    await run([
      charge({ eventId: 'a', amount: 100_000, occurredAt: '2026-03-10T23:10:00+08:00' }),
      charge({ eventId: 'b', amount: 100_000, occurredAt: '2026-03-10T23:11:00+08:00' }),
      charge({ eventId: 'c', amount: 4_900_001, occurredAt: '2026-03-10T23:12:00+08:00' }),
    ]);
    const d = await stored('c');
    expect(d.outcome).toBe('decline');
    expect(d.rules).toEqual(['same_card_burst', 'night_large_amount', 'user_daily_cap']);
    expect(d.reasons[0]).toBe('3 charges on card ****0128 within 10 min (review at 3 or more)');
    expect(d.reasons[2]).toBe('day total on 2026-03-10 would be 51000.01 CNY (2000.00 CNY before this charge), over the cap of 50000.00 CNY');
    expect(d.observed).toMatchObject({ cardCount: 3, dayTotalBefore: 200_000 });
  });

  it('never writes the card number, only a keyed hash and the last four digits', async () => {
    await run([charge({ eventId: 'pan' })]);
    const keys = await ctx.redis.keys(`${ctx.keys.base}:*`);
    const values = await Promise.all(keys.map(async (k) => JSON.stringify([k, await ctx.redis.dump(k)])));
    expect(values.join('\n')).not.toContain('6222021234567890128');
    expect(values.join('\n')).not.toContain('234567890');
  });
  it('caps the decision stream near its configured length (approximately: whole stream nodes are trimmed)', async () => {
    await dropContext(ctx);
    ctx = testContext({ retention: { decisionStreamMaxLen: 1_000 } });
    // The cap is each shard's stream's: 3,000 users of shard 0.
    const userIds: string[] = [];
    for (let i = 0; userIds.length < 3_000; i++) if (ctx.keys.shardOf(`cap-u-${i}`) === 0) userIds.push(`cap-u-${i}`);
    const users = userIds.map((userId, i) => charge({ eventId: `cap-${i}`, userId }));
    for (let i = 0; i < users.length; i += 250) await run(users.slice(i, i + 250));
    const length = await ctx.redis.xlen(ctx.keys.decisionStream(0));
    expect(length).toBeGreaterThanOrEqual(1_000);
    expect(length).toBeLessThan(1_100);
    expect(await decisionStreamLength(ctx.redis, ctx.keys)).toBe(length);
    // The newest decisions are the ones kept.
    const [newest] = await ctx.redis.xrevrange(ctx.keys.decisionStream(0), '+', '-', 'COUNT', 1);
    expect(parseDecision(newest![1][1]!).eventId).toBe('cap-2999');
  });
});

describe('exactly once', () => {
  it('returns the stored decision for a repeat with the same content, the same instant written in another offset', async () => {
    const [first] = await run([charge({ eventId: 'dup', amount: 4_000_000, cardId: '6222 0212 3456 7890 128' })]);
    const [again] = await run([charge({ eventId: 'dup', amount: 4_000_000, occurredAt: '2026-03-10T02:00:00Z' })]);
    expect(again).toEqual(first);
    expect(await decisionStreamLength(ctx.redis, ctx.keys)).toBe(1);
    expect((await ctx.metrics.duplicates.get()).values[0]!.value).toBe(1);
  });

  // Failed before contract v1.1: the second charge (900,000 CNY at 23:30, another user) got the first's "approve".
  it('rejects an eventId reused with other content, naming the fields that differ, and changes nothing', async () => {
    await run([charge({ eventId: 'dup', amount: 4_000_000 })]);
    const before = await ctx.redis.hgetall(ctx.keys.ruleState('u-1'));
    const [again] = await run([charge({ eventId: 'dup', userId: 'u-9', amount: 90_000_000, occurredAt: '2026-03-10T23:30:00+08:00' })]);
    expect(again).toMatchObject({ eventId: 'dup', outcome: 'rejected' });
    expect(again!.error).toBe('eventId reused with other content: userId, amount, occurredAt differ from the event first accepted with this eventId');
    expect(await ctx.redis.hgetall(ctx.keys.ruleState('u-1'))).toEqual(before);
    expect(await ctx.redis.exists(ctx.keys.ruleState('u-9'))).toBe(0);
    expect(parseRuleState(before).days).toEqual(new Map([['2026-03-10', 4_000_000]]));
    expect(await decisionStreamLength(ctx.redis, ctx.keys)).toBe(1);
    expect(await dueSettlements(ctx.redis, ctx.keys)).toHaveLength(1);
    // The first event's decision, in its user's shard, is the only one (none in u-9's shard).
    expect(await Promise.all(ctx.keys.shardIds.map((s) => ctx.redis.exists(ctx.keys.decision(s, 'dup'))))).toEqual(ctx.keys.shardIds.map((s) => (s === ctx.keys.shardOf('u-1') ? 1 : 0)));
    const [letter] = await ctx.deadLetters.list();
    expect(letter!.reason).toMatch(/^eventId reused with other content: userId, amount, occurredAt differ/);
    expect((await ctx.metrics.eventsRejected.get()).values.find((v) => v.labels.reason === 'id_conflict')!.value).toBe(1);
  });

  // Failed before: a claim was looked for in its clock's window and the one before only, so an event whose clock was
  // just before a window's start missed the claim an event of the same id had made just after it (model check, seed 707).
  it('finds a claim made with a later clock, across a claim window boundary', async () => {
    const { windowMs } = claimLayout(ctx.settings.config);
    const boundary = Math.ceil(Date.parse('2026-03-10T00:00:00Z') / windowMs) * windowMs;
    const iso = (ms: number) => new Date(ms).toISOString();
    const first = charge({ eventId: 'straddle', occurredAt: iso(boundary + 60_000) });
    const once = (events: unknown[], clockMs: number) => ctx.processor.process(testBatch(events, { clockMs }), `test:${++seq}`);
    const [decided] = await once([first], boundary + 60_000);
    expect(decided).toMatchObject({ outcome: 'approve' });
    // The same id with another card and time, with a clock two minutes before the window the claim is in.
    const [other] = await once([{ ...first, cardId: '6222029999999999', occurredAt: iso(boundary - 180_000) }], boundary - 120_000);
    expect(other!.error).toBe('eventId reused with other content: card, occurredAt differ from the event first accepted with this eventId');
    // The same event again with that earlier clock: a repeat, answered and counted once.
    const [again] = await once([first], boundary - 120_000);
    expect(again).toEqual(decided);
    expect((await ctx.metrics.duplicates.get()).values[0]!.value).toBe(1);
    expect(await decisionStreamLength(ctx.redis, ctx.keys)).toBe(1);
  });

  it('a batch delivered twice (worker crashed before acknowledging) counts once', async () => {
    const batch = [charge({ eventId: 'r1', amount: 3_000_000 }), charge({ eventId: 'r2', amount: 1_500_000, cardId: 'other-card' }), { type: 'charge', eventId: 'bad' }];
    const first = await run(batch, 'queue:risk-0/1');
    const second = await run(batch, 'queue:risk-0/1');
    expect(second).toEqual(first);
    expect(await ctx.redis.hget(ctx.keys.ruleState('u-1'), '2026-03-10')).toBe('4500000');
    expect(await decisionStreamLength(ctx.redis, ctx.keys)).toBe(2);
    expect(await ctx.deadLetters.count()).toBe(1);
    expect(await ctx.ledger.stats()).toMatchObject({ scheduledCount: 2, scheduledAmount: 4_500_000 });
  });

  it('counts decisions once and redeliveries as duplicates in the metrics', async () => {
    const count = async (c: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> }, labels: Record<string, unknown> = {}) =>
      (await c.get()).values.find((v) => JSON.stringify(v.labels) === JSON.stringify(labels))?.value ?? 0;
    const { decisions, duplicates, settlementsScheduledAmount } = ctx.metrics;
    const before = [await count(decisions, { outcome: 'approve' }), await count(duplicates), await count(settlementsScheduledAmount, { kind: 't_plus_1' })];
    const batch = [charge({ eventId: 'm1', amount: 3_000 }), charge({ eventId: 'm2', amount: 1_500 })];
    await run(batch, 'queue:risk-0/7');
    await run(batch, 'queue:risk-0/7');
    const after = [await count(decisions, { outcome: 'approve' }), await count(duplicates), await count(settlementsScheduledAmount, { kind: 't_plus_1' })];
    expect(after.map((v, i) => v - before[i]!)).toEqual([2, 2, 4_500]);
  });
});

describe('rule state', () => {
  it('keeps only recent charges in a card window', async () => {
    const events = Array.from({ length: 50 }, (_, i) =>
      charge({ eventId: `w-${i}`, amount: 100, occurredAt: new Date(Date.parse('2026-03-10T02:00:00Z') + i * 10 * 60_000).toISOString() }),
    );
    await run(events);
    const { cards } = await ruleState();
    expect(cards.size).toBe(1);
    // Window 10 min + 60 min lateness tolerance, charges every 10 min: the last 7 and this one kept.
    const last = Date.parse('2026-03-10T02:00:00Z') + 49 * 10 * 60_000;
    expect([...cards.values()][0]).toEqual(Array.from({ length: 8 }, (_, i) => last - (7 - i) * 10 * 60_000));
    expect(await ctx.redis.ttl(ctx.keys.ruleState('u-1'))).toBeGreaterThan(0);
  });

  it('keeps a user with a few cards and days in the compact listpack encoding', async () => {
    const events = [];
    for (let day = 0; day < 5; day++) {
      for (let c = 0; c < 3; c++) {
        for (let k = 0; k < 3; k++) {
          const at = Date.parse('2026-03-10T02:00:00Z') + day * 86_400_000 + c * 3_600_000 + k * 60_000;
          events.push(charge({ cardId: `622202123456789${c}`, amount: 1_000, occurredAt: new Date(at).toISOString() }));
        }
      }
    }
    await run(events);
    expect((await ruleState()).days.size).toBe(5);
    expect(await ctx.redis.object('ENCODING', ctx.keys.ruleState('u-1'))).toBe('listpack');
  });

  it('drops day totals past retention and stale card windows, relative to event time', async () => {
    await run([charge({ eventId: 'old', cardId: '6222020000000017', occurredAt: '2026-01-01T10:00:00+08:00' })]);
    await run([charge({ eventId: 'new', occurredAt: '2026-03-10T10:00:00+08:00' })]);
    const { cards, days } = await ruleState();
    expect([...days.keys()]).toEqual(['2026-03-10']);
    expect([...cards.values()]).toEqual([[Date.parse('2026-03-10T10:00:00+08:00')]]);
  });

  it('prunes the rule state at most once a week, and keeps it retention + a week', async () => {
    const cardA = '6222020000000017';
    await run([charge({ eventId: 'a', cardId: cardA, occurredAt: '2026-03-01T10:00:00+08:00' })]);
    await run([charge({ eventId: 'b', occurredAt: '2026-03-03T10:00:00+08:00' })]);
    // Card A's window is stale on 03-03, but the last prune was on 03-01: nothing is pruned yet.
    expect((await ruleState()).cards.size).toBe(2);
    expect((await ruleState()).prunedOn).toBe('2026-03-01');
    await run([charge({ eventId: 'c', occurredAt: '2026-03-07T10:00:00+08:00' })]);
    expect((await ruleState()).cards.size).toBe(2);
    // A week after the last prune: card A goes; the day totals stay (within the 40-day retention).
    await run([charge({ eventId: 'd', occurredAt: '2026-03-08T10:00:00+08:00' })]);
    const state = await ruleState();
    expect(state.cards.size).toBe(1);
    expect(state.prunedOn).toBe('2026-03-08');
    expect([...state.days.keys()].sort()).toEqual(['2026-03-01', '2026-03-03', '2026-03-07', '2026-03-08']);
    const ttl = await ctx.redis.ttl(ctx.keys.ruleState('u-1'));
    expect(ttl).toBeGreaterThan(46 * 86_400);
    expect(ttl).toBeLessThanOrEqual(47 * 86_400);
  });

  it('prunes as of the clock: a charge dated ahead (inside the skew) records the clock\'s date, not its own', async () => {
    const clockMs = Date.parse('2026-03-10T23:58:00+08:00');
    await run([charge({ eventId: 'late-night' })]);
    await ctx.processor.process(testBatch([charge({ eventId: 'ahead', occurredAt: '2026-03-11T00:02:00+08:00' })], { clockMs }), 'test:ahead');
    expect((await ruleState()).prunedOn).toBe('2026-03-10');
  });

  // Failed before contract v1.1: 49,000 today, 0.01 dated 60 days ahead, 49,000 today again was approved.
  it('a charge dated far ahead of the clock is rejected and cannot wipe the day total', async () => {
    const clockMs = Date.parse('2026-03-10T12:00:00+08:00');
    const batch = (events: unknown[]) => ctx.processor.process(testBatch(events, { clockMs }), `test:${++seq}`);
    const at = (iso: string) => ({ occurredAt: iso });
    const results = await batch([
      charge({ eventId: 'a', amount: 4_900_000, ...at('2026-03-10T10:00:00+08:00'), cardId: 'card-a' }),
      charge({ eventId: 'b', amount: 4_900_000, ...at('2026-03-10T10:01:00+08:00'), cardId: 'card-b' }),
      charge({ eventId: 'c', amount: 1, ...at('2026-05-09T10:00:00+08:00'), cardId: 'card-c' }),
      charge({ eventId: 'd', amount: 4_900_000, ...at('2026-03-10T11:00:00+08:00'), cardId: 'card-d' }),
    ]);
    expect(results.map((r) => r.outcome)).toEqual(['approve', 'decline', 'rejected', 'decline']);
    expect(results[2]!.error).toMatch(/^occurredAt is 59 days 22 h ahead of the producer's clock 2026-03-10T04:00:00.000Z \(at most 5 min\)$/);
    expect(await dayTotals()).toEqual({ '2026-03-10': 4_900_000 });
  });

  // Found in review: a batch queued by hand with a producer clock and charges two years ahead passed every time
  // check (each charge is "on time" for that clock) and pruned the user's day totals as of that future date.
  it('refuses a batch whose producer clock is ahead of the worker\'s own, and keeps the day total', async () => {
    await run([charge({ eventId: 'today', amount: 4_900_000 })]);
    const futureMs = Date.now() + 2 * 365 * 86_400_000;
    const futureIso = new Date(futureMs).toISOString();
    const results = await ctx.processor.process(testBatch([charge({ eventId: 'forged', amount: 1, occurredAt: futureIso })], { clockMs: futureMs }), 'test:forged');
    expect(results[0]).toMatchObject({ outcome: 'rejected' });
    expect(results[0]!.error).toMatch(/^the producer's clock .* is (730 days|729 days 23 h) ahead of this worker's clock \(at most 5 min\)$/);
    expect(await dayTotals()).toEqual({ '2026-03-10': 4_900_000 });
    for (const shard of ctx.keys.shardIds) expect(await ctx.redis.exists(ctx.keys.decision(shard, 'forged'))).toBe(0);
    const rejected = (await ctx.metrics.eventsRejected.get()).values.find((v) => v.labels.reason === 'clock_ahead');
    expect(rejected?.value).toBe(1);
  });

  // Found in review: a decoy charge dated now, then three charges dated 2 h earlier one second apart, were all
  // approved: older than the window keeps behind the card's newest, each counted only itself.
  it('holds a charge older than its card window keeps (its burst cannot be counted) for review', async () => {
    const clockMs = Date.parse('2026-03-10T12:00:00+08:00');
    const at = (iso: string) => charge({ cardId: 'card-late', occurredAt: iso });
    const results = await ctx.processor.process(
      testBatch([at('2026-03-10T12:00:00+08:00'), at('2026-03-10T10:00:00+08:00'), at('2026-03-10T10:00:01+08:00'), at('2026-03-10T10:00:02+08:00')], { clockMs }),
      'test:too-late',
    );
    expect(results.map((r) => r.outcome)).toEqual(['approve', 'review', 'review', 'review']);
    expect((await stored(results[1]!.eventId!)).reasons[0]).toBe(
      'charge 120 min behind the newest charge on card ****late, older than its window is kept: reviewed, its burst cannot be counted',
    );
  });

  it('prunes thousands of stale card windows at once (card testing)', async () => {
    const cards = 8_100; // more than Lua's unpack limit in one call
    for (let i = 0; i < cards; i += 500) {
      await run(
        Array.from({ length: Math.min(500, cards - i) }, (_, k) =>
          charge({ eventId: `ct-${i + k}`, cardId: `62220200${String(i + k).padStart(8, '0')}`, amount: 1, occurredAt: '2026-03-01T10:00:00+08:00' }),
        ),
      );
    }
    expect((await ruleState()).cards.size).toBe(cards);
    const [later] = await run([charge({ eventId: 'after', occurredAt: '2026-03-09T10:00:00+08:00' })]);
    expect(later!.outcome).toBe('approve');
    expect((await ruleState()).cards.size).toBe(1);
  });

  it('uses thresholds from configuration', async () => {
    await dropContext(ctx);
    ctx = testContext({ rules: { sameCardBurst: { minCount: 2 }, userDailyCap: { capFen: 15_000 } } });
    const results = await run([charge({ eventId: 'p' }), charge({ eventId: 'q', occurredAt: '2026-03-10T10:01:00+08:00' })]);
    expect(results.map((r) => [r.outcome, r.rules])).toEqual([
      ['approve', []],
      ['decline', ['same_card_burst', 'user_daily_cap']],
    ]);
  });
});

describe('bad input inside a batch', () => {
  it('rejects malformed events with their reason, keeps them, and decides the rest', async () => {
    const results = await run([{ type: 'charge', eventId: 'x', amount: -1 }, 'not an object', charge({ eventId: 'ok' }), { type: 'chargeback' }]);
    expect(results.map((r) => r.outcome)).toEqual(['rejected', 'rejected', 'approve', 'rejected']);
    expect(results[0]).toMatchObject({ eventId: 'x', error: expect.stringContaining('amount must be at least 1 fen') });
    const dead = await ctx.deadLetters.list();
    expect(dead.map((d) => d.reason).reverse()).toEqual([
      expect.stringContaining('userId is missing'),
      'event must be a JSON object, got string',
      'unknown event type "chargeback" (known: charge, account_opened, repayment, asset_snapshot, social_snapshot, refund, complaint)',
    ]);
    expect(await dayTotals()).toEqual({ '2026-03-10': 10_000 });
  });

  it('dead-letters a payload that is not a batch at all', async () => {
    expect(await ctx.processor.process('garbage', 'queue:risk-1/9')).toEqual([]);
    expect((await ctx.deadLetters.list())[0]).toMatchObject({ source: 'queue:risk-1/9', reason: 'job payload is not an object', raw: 'garbage' });
  });
});

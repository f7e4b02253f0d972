/**
 * The rules script answers a new decision with a short summary and a duplicate with its charge record; the
 * processor must read both into the same result, and the stored decision must stay complete.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import { parseDecision } from '../../src/decisions/decision.ts';
import { recordDay, recordGeneration } from '../../src/decisions/charge-record.ts';
import { isPlainJsonText, parseChargeReply, parseDecisionSummary } from '../../src/rules/charge-rules.ts';
import { parseRuleState } from '../../src/rules/rule-state.ts';
import { dropContext, testContext } from '../helpers/context.ts';
import { testBatch } from '../helpers/batch.ts';
import { decisionKey, decisionStreamLength } from '../helpers/shards.ts';

let ctx: Context | undefined;
afterEach(async () => {
  if (ctx) await dropContext(ctx);
  ctx = undefined;
});

const charge = (eventId: string, amount: number, occurredAt: string) => ({
  type: 'charge',
  eventId,
  userId: 'u-reply',
  merchantId: 'm-1',
  cardId: '6222020000000017',
  amount,
  currency: 'CNY',
  occurredAt,
});

describe('rules script reply', () => {
  it('reads the summary of a new decision and the stored record of a duplicate alike', async () => {
    ctx = testContext();
    const events = [
      charge('r-1', 1_000, '2026-03-10T23:10:00.000+08:00'),
      charge('r-2', 2_000, '2026-03-10T23:11:00.000+08:00'),
      // T+1 03:00 Shanghai = 19:00Z on the event's own UTC date; review holds 48 h more.
      // Third on the card within 10 minutes, large at night, over the daily cap: all three rules.
      charge('r-3', 5_000_000, '2026-03-10T23:12:00.000+08:00'),
      charge('r-4', 3_000, '2026-03-10T23:13:00.000+08:00'),
    ];
    const first = await ctx.processor.process(testBatch(events), 'test:first');
    expect(first.map((r) => [r.outcome, r.rules, r.settleAt])).toEqual([
      ['approve', [], '2026-03-10T19:00:00.000Z'],
      ['approve', [], '2026-03-10T19:00:00.000Z'],
      ['decline', ['same_card_burst', 'night_large_amount', 'user_daily_cap'], null],
      ['review', ['same_card_burst'], '2026-03-12T19:00:00.000Z'],
    ]);

    const again = await ctx.processor.process(testBatch(events), 'test:again');
    expect(again).toEqual(first);

    const stored = parseDecision((await ctx.redis.get(decisionKey(ctx.keys, 'u-reply', 'r-3')))!);
    expect(stored).toMatchObject({
      eventId: 'r-3',
      userId: 'u-reply',
      amount: 5_000_000,
      card: '****0017',
      outcome: 'decline',
      rules: ['same_card_burst', 'night_large_amount', 'user_daily_cap'],
      observed: { cardCount: 3, dayTotalBefore: 3_000, localDate: '2026-03-10', localTime: '23:12:00' },
      settleAt: null,
    });
    expect(stored.reasons).toHaveLength(3);
    expect(stored.reasons[1]).toContain('inside the night window 23:00–02:00');
    expect(await decisionStreamLength(ctx.redis, ctx.keys)).toBe(4);
    // Day totals: what was not declined, with its count.
    expect(parseRuleState(await ctx.redis.hgetall(ctx.keys.ruleState('u-reply'))).days).toEqual(new Map([['2026-03-10', 6_000]]));
  });

  it('fails one charge of a run alone: the others are decided, the failed one is dead-lettered with its reason', async () => {
    ctx = testContext();
    // A user whose rule state is not a hash: every Redis call on it fails (WRONGTYPE), deterministically.
    await ctx.redis.set(ctx.keys.ruleState('u-broken'), 'not a hash');
    const events = [
      charge('f-1', 1_000, '2026-03-10T10:00:00.000+08:00'),
      { ...charge('f-2', 2_000, '2026-03-10T10:01:00.000+08:00'), userId: 'u-broken' },
      charge('f-3', 3_000, '2026-03-10T10:02:00.000+08:00'),
    ];
    const results = await ctx.processor.process(testBatch(events), 'test:broken');
    expect(results.map((r) => r.outcome)).toEqual(['approve', 'rejected', 'approve']);
    expect(results[1]!.error).toMatch(/^evaluation failed: .*WRONGTYPE/);
    expect(await decisionStreamLength(ctx.redis, ctx.keys)).toBe(2);
    expect(await ctx.ledger.stats()).toMatchObject({ scheduledCount: 2, scheduledAmount: 4_000 });
    const [dead] = await ctx.deadLetters.list();
    expect(dead).toMatchObject({ reason: expect.stringContaining('WRONGTYPE') });
  });

  it('reads every reply form of the rules script', () => {
    // A record found in the hash of 2026-03-10's generation, its day within it.
    const [G, D] = [recordGeneration('2026-03-10'), recordDay('2026-03-10')];
    expect(parseChargeReply('Napprove - -', G)).toEqual({ kind: 'new', summary: { outcome: 'approve', settleAt: null, rules: [] } });
    expect(parseChargeReply(`Dr2000 lmfa3k0 ${D} c 02 shop%2025%25 u 1`, G)).toEqual({
      kind: 'duplicate',
      record: {
        outcome: 'review',
        amount: 2_000,
        settleAt: new Date(parseInt('lmfa3k0', 36)).toISOString(),
        localDate: '2026-03-10',
        creditCounted: true,
        rules: ['same_card_burst', 'user_daily_cap'],
        merchantId: 'shop 25%',
        userId: 'u 1',
      },
    });
    expect(parseChargeReply(`Da1 - ${D} - - m-1 u-1`, G)).toMatchObject({ kind: 'duplicate', record: { outcome: 'approve', settleAt: null, rules: [], merchantId: 'm-1' } });
    // A record of an earlier layout (a whole date, no merchant) is not read as one.
    expect(parseChargeReply('Da1 - 20260310 - - u-1', G)).toMatchObject({ kind: 'error' });
    expect(parseChargeReply('Da1 - 20260310 - - m-1 u-1', G)).toMatchObject({ kind: 'error' });
    expect(parseChargeReply('D{"eventId":"x"}', G)).toEqual({ kind: 'error', message: 'not a charge record: "{\\"eventId\\":\\"x\\"}"' });
    expect(parseChargeReply(`Da1 - ${D} - z m-1 u-1`, G)).toMatchObject({ kind: 'error' });
    expect(parseChargeReply('EWRONGTYPE Operation against a key', G)).toEqual({ kind: 'error', message: 'WRONGTYPE Operation against a key' });
    expect(parseChargeReply('?', G)).toMatchObject({ kind: 'error', message: expect.stringContaining('unexpected reply') });
  });

  it('parses every summary form', () => {
    expect(parseDecisionSummary('approve 2026-03-11T19:00:00.000Z -')).toEqual({ outcome: 'approve', settleAt: '2026-03-11T19:00:00.000Z', rules: [] });
    expect(parseDecisionSummary('decline - night_large_amount,user_daily_cap')).toEqual({
      outcome: 'decline',
      settleAt: null,
      rules: ['night_large_amount', 'user_daily_cap'],
    });
  });

  it('stores any text of an event as valid JSON that reads back the same, quoted as it is only when plain', async () => {
    ctx = testContext();
    const c = ctx;
    // Mostly the characters JSON escapes, so both the plain and the escaping paths of the script are taken.
    const special = fc.constantFrom('"', '\\', '/', '\u0000', '\u0008', '\t', '\n', '\u001f', '\u007f', 'é', '分付', '😀', 'a', '-', ' ');
    const text = (max: number) => fc.oneof(fc.array(special, { minLength: 1, maxLength: max }).map((a) => a.join('')), fc.string({ unit: 'binary', minLength: 1, maxLength: max }));
    // cardLast4 is "****" and up to 4 characters other than line terminators (the schema's "." ).
    const label = fc.array(special.filter((ch) => ch.length === 1 && !/[\n\r]/.test(ch)), { maxLength: 4 }).map((a) => `****${a.join('')}`);
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ eventId: text(40), userId: text(20), merchantId: text(20), cardLast4: label }), { minLength: 1, maxLength: 20 }), async (texts) => {
        const events = texts.map((t) => ({
          ...t,
          eventId: `${++n}:${t.eventId}`,
          type: 'charge',
          cardToken: 'AbCdEfGh_-123456',
          amount: 1_000,
          occurredAt: '2026-03-10T10:00:00.000+08:00',
        }));
        const results = await c.processor.process(testBatch(events), `test:texts-${n}`);
        expect(results.map((r) => r.outcome).filter((o) => o === 'rejected')).toEqual([]);
        for (const e of events) {
          const raw = (await c.redis.get(decisionKey(c.keys, e.userId, e.eventId)))!;
          const stored = JSON.parse(raw) as Record<string, unknown>;
          expect({ eventId: stored.eventId, userId: stored.userId, merchantId: stored.merchantId, card: stored.card }).toEqual({
            eventId: e.eventId,
            userId: e.userId,
            merchantId: e.merchantId,
            card: e.cardLast4,
          });
          // Byte for byte what cjson makes of each text, whichever way the script took (quoted as it is when plain).
          for (const [field, value] of [['eventId', e.eventId], ['userId', e.userId], ['merchantId', e.merchantId], ['card', e.cardLast4]] as const) {
            const encoded = String(await c.redis.eval('return cjson.encode(ARGV[1])', 0, value));
            expect(raw).toContain(`"${field}":${encoded},`);
            if (isPlainJsonText(value)) expect(encoded).toBe(`"${value}"`);
          }
        }
      }),
      { numRuns: 40 },
    );
  });
});

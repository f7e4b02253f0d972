/**
 * Rule state written before the rule-state hash (a day-totals hash and a sorted set per card) is moved into it by
 * `npm run migrate-rule-state`, exactly once, and the rules see it afterwards.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import { parseRuleState } from '../../src/rules/rule-state.ts';
import { runTool } from '../helpers/cli.ts';
import { dropContext, redisUrl, testContext } from '../helpers/context.ts';
import { testBatch } from '../helpers/batch.ts';

let ctx: Context | undefined;
afterEach(async () => {
  if (ctx) await dropContext(ctx);
  ctx = undefined;
});

const charge = (eventId: string, amount: number, occurredAt: string) => ({
  type: 'charge',
  eventId,
  userId: 'u-old',
  merchantId: 'm-1',
  cardId: '6222021234567890128',
  amount,
  occurredAt,
});

describe('npm run migrate-rule-state', () => {
  it('moves old day totals and card windows into the rule-state hash once, and the rules use them', async () => {
    ctx = testContext();
    const { redis, keys } = ctx;
    const token = ctx.cards.token('6222021234567890128');
    const t1 = Date.parse('2026-03-10T10:00:00+08:00');
    const t2 = Date.parse('2026-03-10T10:05:00+08:00');
    // The old layout, as the previous rules script left it.
    await redis.hset(`${keys.base}:u:{u-old}:days`, '2026-03-10', '4900000', '2026-03-10#n', '2', '2026-03-09', '100', '2026-03-09#n', '1');
    await redis.zadd(`${keys.base}:u:{u-old}:card:${token}`, t1, 'aaaaaaaaaaaa', t2, 'bbbbbbbbbbbb');
    await redis.zadd(`${keys.base}:u:{u-old}:card:AAAAAAAAAAAAAAAA`, t1, 'cccccccccccc');

    const env = { REDIS_URL: redisUrl(), RISKMON_NAMESPACE: keys.namespace };
    const first = await runTool('migrate-rule-state', [], env);
    expect(first.stderr).toBe('');
    expect(JSON.parse(first.stdout)).toEqual({ users: 1, days: 4, cards: 2 });
    const state = parseRuleState(await redis.hgetall(keys.ruleState('u-old')));
    expect(state.days).toEqual(new Map([['2026-03-10', 4_900_000], ['2026-03-09', 100]]));
    expect(state.cards.get(token)).toEqual([t1, t2]);
    expect(await redis.ttl(keys.ruleState('u-old'))).toBeGreaterThan(46 * 86_400);
    expect(await redis.keys(`${keys.base}:u:{u-old}:card:*`)).toEqual([]);
    expect(await redis.exists(`${keys.base}:u:{u-old}:days`)).toBe(0);

    // Again: nothing left to move, nothing counted twice.
    const again = await runTool('migrate-rule-state', [], env);
    expect(JSON.parse(again.stdout)).toEqual({ users: 0, days: 0, cards: 0 });
    expect(parseRuleState(await redis.hgetall(keys.ruleState('u-old'))).days.get('2026-03-10')).toEqual(4_900_000);

    // The migrated state decides: 49,000 CNY spent, 2,000 more is over the cap; third charge on the card in 10 min.
    const [result] = await ctx.processor.process(testBatch([charge('after', 200_000, '2026-03-10T10:06:00+08:00')]), 'test:after');
    expect(result).toMatchObject({ outcome: 'decline', rules: ['same_card_burst', 'user_daily_cap'] });
  });
});

/**
 * The merchant admission list (merchant_blocklisted): kept with `npm run lists`, every change audited, and read by
 * the rules script in the call that decides, by the charge's occurredAt.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import type { ChargeEvent } from '../../src/events/schema.ts';
import { ListError, MAX_ENTRIES_PER_ID } from '../../src/lists/lists.ts';
import { decideBatch, testCharge } from '../helpers/charges.ts';
import { runTool, readNdjson } from '../helpers/cli.ts';
import { dropContext, redisUrl, testContext } from '../helpers/context.ts';

let ctx: Context;

let users = 0;
const charge = (over: Partial<ChargeEvent> = {}) => testCharge({ userId: `u-${++users}`, merchantId: 'm-13', ...over });

const decide = (events: ChargeEvent[]) => decideBatch(ctx, events, Date.parse('2026-03-10T16:00:00+08:00'));

beforeEach(() => {
  ctx = testContext();
});
afterEach(async () => {
  await dropContext(ctx);
});

describe('merchant_blocklisted', () => {
  it('declines a charge whose occurredAt an entry covers, [from, until), and says why', async () => {
    await ctx.lists.merchants.add('m-13', { reason: 'card testing reported by the acquirer', by: 'alice', from: '2026-03-10T12:00:00+08:00', until: '2026-03-10T14:00:00+08:00' });
    const [before, atFrom, inside, atUntil, other] = await decide([
      charge({ occurredAt: '2026-03-10T11:59:59.999+08:00' }),
      charge({ occurredAt: '2026-03-10T12:00:00+08:00' }),
      charge({ occurredAt: '2026-03-10T13:00:00+08:00' }),
      charge({ occurredAt: '2026-03-10T14:00:00+08:00' }),
      charge({ merchantId: 'm-1', occurredAt: '2026-03-10T13:00:00+08:00' }),
    ]);
    expect([before, atFrom, inside, atUntil, other].map((d) => d!.outcome)).toEqual(['approve', 'decline', 'decline', 'approve', 'approve']);
    expect(atFrom!.rules).toEqual(['merchant_blocklisted']);
    expect(atFrom!.reasons).toEqual(['merchant m-13 is on the admission list from 2026-03-10T12:00:00+08:00 until 2026-03-10T14:00:00+08:00: card testing reported by the acquirer']);
    expect(atFrom!.settleAt).toBeNull();
    // A declined charge adds nothing to the day total.
    expect(await ctx.redis.hget(ctx.keys.ruleState(atFrom!.userId), '2026-03-10')).toBeNull();
  });

  it('sees a change at once (no cache): a removal ends the entry now, a charge dated before it is still declined', async () => {
    const now = Date.parse('2026-03-10T15:00:00+08:00');
    await ctx.lists.merchants.add('m-13', { reason: 'fraud', by: 'alice', from: '2026-03-10T00:00:00+08:00' }, now);
    const [listed] = await decide([charge({ occurredAt: '2026-03-10T14:00:00+08:00' })]);
    expect(listed!.outcome).toBe('decline');
    expect(await ctx.lists.merchants.remove('m-13', { by: 'bob' }, now)).toBe(1);
    const [beforeRemoval, afterRemoval] = await decide([charge({ occurredAt: '2026-03-10T14:30:00+08:00' }), charge({ occurredAt: '2026-03-10T15:00:00+08:00' })]);
    expect(beforeRemoval!.outcome).toBe('decline');
    expect(afterRemoval!.outcome).toBe('approve');
    await expect(ctx.lists.merchants.remove('m-13', { by: 'bob' }, now)).rejects.toThrow(/no entry in force or to come/);
    const history = await ctx.lists.merchants.history();
    expect(history.map((c) => [c.action, c.by, c.id, c.ended])).toEqual([
      ['add', 'alice', 'm-13', undefined],
      ['remove', 'bob', 'm-13', 1],
    ]);
  });

  it('refuses an entry that ends before it starts, a bad instant, an empty reason or actor, and changes nothing', async () => {
    await expect(ctx.lists.merchants.add('m-13', { reason: 'x', by: 'a', from: '2026-03-10T12:00:00+08:00', until: '2026-03-10T12:00:00+08:00' })).rejects.toThrow(/--until .* must be after --from/);
    await expect(ctx.lists.merchants.add('m-13', { reason: 'x', by: 'a', from: '2026-03-10 12:00' })).rejects.toThrow(ListError);
    await expect(ctx.lists.merchants.add('m-13', { reason: ' ', by: 'a' })).rejects.toThrow(/--reason is empty/);
    await expect(ctx.lists.merchants.add('m-13', { reason: 'x', by: '' })).rejects.toThrow(/--by is empty/);
    // No card number is ever stored: not as a merchant id, not in a reason or a name.
    await expect(ctx.lists.merchants.add('6222021234567890128', { reason: 'x', by: 'a' })).rejects.toThrow(/merchant id holds a card number/);
    await expect(ctx.lists.merchants.add('m-13', { reason: 'customer card 6222 0212 3456 7890 128 reported', by: 'a' })).rejects.toThrow(/--reason holds a card number/);
    expect((await ctx.lists.merchants.show()).size).toBe(0);
    expect(await ctx.lists.merchants.history()).toEqual([]);
  });
});

describe('the list stays small', () => {
  it('drops entries ended longer ago than a charge may be dated, and caps entries per merchant', async () => {
    const day = 86_400_000;
    const t0 = Date.parse('2026-03-01T00:00:00+08:00');
    await ctx.lists.merchants.add('m-13', { reason: 'old', by: 'a', from: new Date(t0).toISOString(), until: new Date(t0 + day).toISOString() }, t0);
    await ctx.lists.merchants.add('m-13', { reason: 'recent', by: 'a', from: new Date(t0 + 5 * day).toISOString() }, t0 + 5 * day);
    expect((await ctx.lists.merchants.show()).get('m-13')!.map((e) => e.reason)).toEqual(['old', 'recent']);
    // Nine days after the old one ended (maxAgeDays 7, and a day): the next change drops it.
    await ctx.lists.merchants.add('m-13', { reason: 'newer', by: 'a' }, t0 + 10 * day);
    expect((await ctx.lists.merchants.show()).get('m-13')!.map((e) => e.reason)).toEqual(['recent', 'newer']);

    for (let i = 2; i < MAX_ENTRIES_PER_ID; i++) await ctx.lists.merchants.add('m-14', { reason: `r${i}`, by: 'a' }, t0);
    await ctx.lists.merchants.add('m-14', { reason: 'last', by: 'a' }, t0);
    await ctx.lists.merchants.add('m-14', { reason: 'last', by: 'a' }, t0);
    await expect(ctx.lists.merchants.add('m-14', { reason: 'one too many', by: 'a' }, t0)).rejects.toThrow(`merchant m-14 has ${MAX_ENTRIES_PER_ID} entries already`);
    expect((await ctx.lists.merchants.show()).get('m-14')).toHaveLength(MAX_ENTRIES_PER_ID);
  });

  it('refuses control characters in ids and texts (records are printed one per line)', async () => {
    await expect(ctx.lists.merchants.add('m-13\nm-666 from always', { reason: 'x', by: 'a' })).rejects.toThrow(/merchant id holds a control character/);
    await expect(ctx.lists.merchants.add('m-13', { reason: 'x\u0000y', by: 'a' })).rejects.toThrow(/--reason holds a control character/);
  });
});

describe('npm run lists', () => {
  const env = () => ({ REDIS_URL: redisUrl(), RISKMON_NAMESPACE: ctx.keys.namespace });

  it('adds, shows, removes and lists the history from the command line', async () => {
    const add = await runTool('lists', ['add', 'merchant', 'm-13', '--reason', 'licence suspended', '--by', 'alice', '--from', '2026-03-10T00:00:00+08:00'], env());
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    expect(add.stdout).toContain('merchant m-13 listed from 2026-03-10T00:00:00+08:00 until removed: licence suspended');
    const shown = JSON.parse((await runTool('lists', ['show', '--json'], env())).stdout) as { merchants: Record<string, { reason: string; by: string }[]> };
    expect(shown.merchants['m-13']).toMatchObject([{ reason: 'licence suspended', by: 'alice' }]);
    const [listed] = await decide([charge({ occurredAt: '2026-03-10T09:00:00+08:00' })]);
    expect(listed!.outcome).toBe('decline');

    const removed = await runTool('lists', ['remove', 'merchant', 'm-13', '--by', 'bob'], env());
    expect(removed.code).toBe(0);
    expect(removed.stdout).toContain('1 entry ended now');
    const history = readNdjson<{ action: string; by: string }>((await runTool('lists', ['history', '--json'], env())).stdout);
    expect(history.map((h) => `${h.action}:${h.by}`)).toEqual(['add:alice', 'remove:bob']);
    expect((await runTool('lists', ['history'], env())).stdout).toMatch(/bob {2}merchant m-13 ended 1 entry/);
  }, 60_000);

  it('refuses a change without who makes it, or with a bad instant, with the reason and exit code 2', async () => {
    const noBy = await runTool('lists', ['add', 'merchant', 'm-13', '--reason', 'x'], env());
    expect(noBy.code).toBe(2);
    expect(noBy.stderr).toContain('--by <name> is required');
    const badFrom = await runTool('lists', ['add', 'merchant', 'm-13', '--reason', 'x', '--by', 'a', '--from', 'tomorrow'], env());
    expect(badFrom.code).toBe(2);
    expect(badFrom.stderr).toMatch(/--from: /);
    const nothing = await runTool('lists', ['remove', 'merchant', 'm-13', '--by', 'a'], env());
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain('nothing to remove');
    expect((await ctx.lists.merchants.history()).length).toBe(0);
  }, 60_000);
});

/**
 * Each shard's rules read a copy of the lists in the shard's slot (src/lists/lists.ts): a change reaches every copy
 * before it returns, copies converge whatever order changes land in, and `sync` repairs a copy left behind.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import { defineScript, loadScript } from '../../src/redis/scripts.ts';
import { decideBatch, testCharge } from '../helpers/charges.ts';
import { runTool } from '../helpers/cli.ts';
import { dropContext, redisUrl, testContext } from '../helpers/context.ts';

let ctx: Context;
beforeEach(() => {
  ctx = testContext({ pipeline: { shards: 8 } });
});
afterEach(async () => {
  await dropContext(ctx);
});

const copies = (kind: 'merchant' | 'user' | 'card', id: string) => Promise.all(ctx.keys.shardIds.map((s) => ctx.redis.hget(ctx.keys.listCopy(s, kind), id)));

describe("the shards' copies of the lists", () => {
  it('take every change before it returns, and decide by it in every shard', async () => {
    await ctx.lists.merchants.add('m-x', { reason: 'fraud ring', by: 'alice', from: '2026-03-10T00:00:00+08:00' });
    const listed = await ctx.redis.hget(ctx.keys.merchantList, 'm-x');
    expect(await copies('merchant', 'm-x')).toEqual(ctx.keys.shardIds.map(() => listed));
    // Users spread over all eight shards, every one declined by the list.
    const users = Array.from({ length: 64 }, (_, i) => `spread-${i}`);
    expect(new Set(users.map((u) => ctx.keys.shardOf(u))).size).toBe(8);
    const results = await decideBatch(
      ctx,
      users.map((userId, i) => testCharge({ userId, eventId: `c-${i}`, merchantId: 'm-x', occurredAt: '2026-03-10T12:00:00+08:00' })),
      Date.parse('2026-03-10T16:00:00+08:00'),
    );
    expect(results.map((r) => r.rules)).toEqual(users.map(() => ['merchant_blocklisted']));
    await ctx.lists.merchants.remove('m-x', { by: 'alice' }, Date.parse('2026-03-10T13:00:00+08:00'));
    const ended = await ctx.redis.hget(ctx.keys.merchantList, 'm-x');
    expect(ended).not.toBe(listed);
    expect(await copies('merchant', 'm-x')).toEqual(ctx.keys.shardIds.map(() => ended));
  });

  it('never let an older version overwrite a newer one (two changes copied out of order)', async () => {
    const copy = defineScript(ctx.redis, loadScript(new URL('../../src/lists/copyListEntry-2.lua', import.meta.url)));
    const keys = [ctx.keys.listCopy(0, 'user'), ctx.keys.listCopyVersions(0, 'user')];
    expect(await copy(ctx.redis, keys, ['u-1', '["new"]', '1700000000000-3'])).toBe(1);
    expect(await copy(ctx.redis, keys, ['u-1', '["old"]', '1700000000000-2'])).toBe(0);
    expect(await copy(ctx.redis, keys, ['u-1', '["older"]', '999-9'])).toBe(0);
    expect(await copy(ctx.redis, keys, ['u-1', '["same"]', '1700000000000-3'])).toBe(0);
    expect(await ctx.redis.hget(keys[0]!, 'u-1')).toBe('["new"]');
    // A newer version that has no entries left removes the id.
    expect(await copy(ctx.redis, keys, ['u-1', '', '1700000000001-0'])).toBe(1);
    expect(await ctx.redis.hexists(keys[0]!, 'u-1')).toBe(0);
  });

  it('are brought up to date by sync after a change cut short between the list and its copies', async () => {
    await ctx.lists.users.add('u-frozen', { reason: 'reported stolen phone', by: 'bob' });
    const listed = await ctx.redis.hget(ctx.keys.userList, 'u-frozen');
    // As if the process died after the list changed: two copies never got it.
    await ctx.redis.del(ctx.keys.listCopy(2, 'user'), ctx.keys.listCopyVersions(2, 'user'));
    await ctx.redis.del(ctx.keys.listCopy(5, 'user'), ctx.keys.listCopyVersions(5, 'user'));
    expect(await ctx.lists.sync()).toBe(2);
    expect(await copies('user', 'u-frozen')).toEqual(ctx.keys.shardIds.map(() => listed));
    expect(await ctx.lists.sync()).toBe(0);
  });

  it('are brought up to date by `npm run lists -- sync` too', { timeout: 30_000 }, async () => {
    const four = testContext();
    try {
      await four.lists.merchants.add('m-behind', { reason: 'chargebacks', by: 'carol' });
      await four.redis.del(four.keys.listCopy(1, 'merchant'), four.keys.listCopyVersions(1, 'merchant'));
      const r = await runTool('lists', ['sync', '--namespace', four.keys.namespace], { REDIS_URL: redisUrl() });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`1 shard copy of list entries brought up to date in namespace ${four.keys.namespace}\n`);
      expect(await four.redis.hget(four.keys.listCopy(1, 'merchant'), 'm-behind')).toBe(await four.redis.hget(four.keys.merchantList, 'm-behind'));
    } finally {
      await dropContext(four);
    }
  });
});

/** The namespace's key layout is recorded on first start and a process with another shard count is refused. */
import { afterEach, describe, expect, it } from 'vitest';
import { Keys } from '../../src/redis/keys.ts';
import { checkLayout, LayoutError, LAYOUT_VERSION } from '../../src/redis/layout.ts';
import { dropContext, testContext } from '../helpers/context.ts';

describe('key layout guard', () => {
  let ctx: ReturnType<typeof testContext> | undefined;
  afterEach(async () => {
    if (ctx) await dropContext(ctx);
    ctx = undefined;
  });

  it('records the layout of a new namespace, then accepts the same shard count again', async () => {
    ctx = testContext({ pipeline: { shards: 8 } });
    await checkLayout(ctx.redis, ctx.keys);
    expect(await ctx.redis.hgetall(ctx.keys.layout)).toEqual({ version: String(LAYOUT_VERSION), shards: '8', recordParts: '64' });
    await expect(checkLayout(ctx.redis, ctx.keys)).resolves.toBeUndefined();
  });

  it('refuses another shard count: every user would be looked for in another slot', async () => {
    ctx = testContext({ pipeline: { shards: 8 } });
    await checkLayout(ctx.redis, ctx.keys);
    const other = new Keys(ctx.keys.namespace, 16);
    await expect(checkLayout(ctx.redis, other)).rejects.toThrow(LayoutError);
    await expect(checkLayout(ctx.redis, other)).rejects.toThrow(/written with pipeline\.shards = 8, and this process has 16/);
  });

  it('processes starting together on a new namespace all agree on one record (a bug: one saw the version before the shards)', async () => {
    ctx = testContext({ pipeline: { shards: 4 } });
    const c = ctx;
    const clients = Array.from({ length: 6 }, () => c.redis.duplicate());
    try {
      for (let round = 0; round < 30; round++) {
        const keys = new Keys(`${c.keys.namespace}-r${round}`, 4);
        await Promise.all(clients.map((client, i) => new Promise((r) => setTimeout(r, i % 3)).then(() => checkLayout(client, keys))));
        expect(await c.redis.hgetall(keys.layout)).toEqual({ version: String(LAYOUT_VERSION), shards: '4', recordParts: '64' });
        await c.redis.del(keys.layout);
      }
    } finally {
      await Promise.all(clients.map((client) => client.quit()));
    }
  });

  it('completes a record another starter had begun (version written, shards not yet)', async () => {
    ctx = testContext({ pipeline: { shards: 4 } });
    await ctx.redis.hset(ctx.keys.layout, 'version', LAYOUT_VERSION);
    await expect(checkLayout(ctx.redis, ctx.keys)).resolves.toBeUndefined();
    expect(await ctx.redis.hgetall(ctx.keys.layout)).toEqual({ version: String(LAYOUT_VERSION), shards: '4', recordParts: '64' });
  });

  it('refuses a namespace written in the layout before shard slots', async () => {
    ctx = testContext();
    await ctx.redis.zadd(`${ctx.keys.base}:settle:due`, 1, 'e-1');
    await expect(checkLayout(ctx.redis, ctx.keys)).rejects.toThrow(/layout before shard slots/);
    expect(await ctx.redis.exists(ctx.keys.layout)).toBe(0);
  });

  it('refuses another retention.chargeRecordHashesPerShard than the namespace was written with', async () => {
    ctx = testContext({ pipeline: { shards: 4 } });
    await checkLayout(ctx.redis, ctx.keys);
    const other = new Keys(ctx.keys.namespace, 4, 128);
    await expect(checkLayout(ctx.redis, other)).rejects.toThrow(/written with retention\.chargeRecordHashesPerShard = 64, and this process has 128: .*decided twice/);
  });

  it('refuses a namespace recorded with layout 2 (the decision key was the dedupe), naming the procedure', async () => {
    ctx = testContext({ pipeline: { shards: 4 } });
    await ctx.redis.hset(ctx.keys.layout, 'version', 2, 'shards', 4);
    await expect(checkLayout(ctx.redis, ctx.keys)).rejects.toThrow(/written with key layout 2; this version reads layout 3\. Replay its recent events into a new namespace.*Upgrading the key layout/);
  });
});

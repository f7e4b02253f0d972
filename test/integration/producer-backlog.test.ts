/**
 * While batches wait on a shard (workers behind), the producer lets the next batch grow instead of adding more
 * small jobs. No worker runs here, so the backlog is certain; only generous waits are used, no timing asserted.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Context } from '../../src/context.ts';
import { EventProducer } from '../../src/pipeline/producer.ts';
import type { RiskEvent } from '../../src/events/schema.ts';
import { dropContext, testContext } from '../helpers/context.ts';

let ctx: Context | undefined;
let producer: EventProducer | undefined;
afterEach(async () => {
  await producer?.close();
  if (ctx) await dropContext(ctx);
  producer = undefined;
  ctx = undefined;
});

const charge = (i: number): RiskEvent => ({
  type: 'charge',
  eventId: `bl-${i}`,
  userId: 'u-1',
  merchantId: 'm-1',
  cardId: '6222020000000017',
  amount: 100,
  occurredAt: '2026-03-10T10:00:00.000+08:00',
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function run(busyLingerMs: number): Promise<number[]> {
  ctx = testContext({ pipeline: { shards: 1, maxBatch: 500, lingerMs: 1, busyLingerMs } });
  const sizes: number[] = [];
  producer = await ctx.openProducer({ clock: 'replay', onJob: (_job, _shard, tags) => sizes.push(tags.length) });
  // Two batches, one event each, with nobody to take them: the shard now has a backlog.
  producer.send(charge(1));
  await vi.waitFor(() => expect(sizes).toHaveLength(1));
  producer.send(charge(2));
  await vi.waitFor(() => expect(sizes).toHaveLength(2));
  await sleep(300); // several backlog polls (every 25 ms)
  for (let i = 3; i <= 5; i++) producer.send(charge(i));
  await sleep(300);
  const beforeFlush = sizes.length;
  await producer.flush();
  return [beforeFlush, ...sizes];
}

describe('producer under a backlog', () => {
  it('holds the next batch back while the shard is behind, so it grows', async () => {
    const [beforeFlush, ...sizes] = await run(5_000);
    expect(beforeFlush).toBe(2);
    expect(sizes).toEqual([1, 1, 3]);
  });

  it('adds small batches as before when the busy linger is off', async () => {
    const [beforeFlush, ...sizes] = await run(0);
    expect(beforeFlush).toBe(3);
    expect(sizes.slice(0, 2)).toEqual([1, 1]);
    expect(sizes.slice(2).reduce((a, b) => a + b, 0)).toBe(3);
  });
});

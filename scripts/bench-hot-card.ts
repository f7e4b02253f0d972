/**
 * Hot-card benchmark: what one charge costs Redis when its card is hammered (N charges in an hour on one card)
 * against the everyday case (10 charges an hour per card, as many charges in all), through the rules script as the
 * workers call it (runs of CHARGES_PER_CALL). Before card windows were bounded, 3,000 charges in an hour made each
 * call 24 ms and the window 27 KB: the cost per charge grew with the card's traffic.
 *
 *   npm run bench:hot-card -- [--charges 10000] [--redis-url URL]
 *
 * Without --redis-url it starts a private redis-server and stops it afterwards. Redis time per charge is read from
 * INFO commandstats (usec of EVALSHA), so the client's own speed does not enter; compare the two figures of one
 * run, not runs on different days.
 */
import { fileURLToPath } from 'node:url';
import { loadSettings } from '../src/config.ts';
import { createContext, type Context } from '../src/context.ts';
import { runCommand, wholeNumberOption } from '../src/cli.ts';
import type { ChargeEvent } from '../src/events/schema.ts';
import { silentLogger } from '../src/logger.ts';
import { startRedisServer } from '../src/redis/local-server.ts';
import { defineScript } from '../src/redis/scripts.ts';
import { CHARGES_PER_CALL, evaluateChargesScript, parseChargeReply } from '../src/rules/charge-rules.ts';
import { thinAbove } from '../src/rules/same-card-burst.ts';
import { parseInfo } from './bench/redis-probe.ts';

export interface HotCardResult {
  charges: number;
  /** Redis µs per charge, one card with every charge in one hour. */
  hotUsPerCharge: number;
  /** Redis µs per charge, 10 charges an hour per card. */
  everydayUsPerCharge: number;
  /** hot ÷ everyday. */
  ratio: number;
  /** Times the hot card's window holds at the end, and the bound. */
  hotWindowEntries: number;
  thinAbove: number;
  hotWindowBytes: number;
  /** Outcomes of the hot card's charges (all but the first two are reviews: the burst rule still fires). */
  hotOutcomes: Record<string, number>;
}

const HOUR_MS = 3_600_000;
const START_MS = Date.parse('2026-03-10T10:00:00+08:00');

function charges(prefix: string, users: number, perUser: number): ChargeEvent[] {
  const out: ChargeEvent[] = [];
  // Interleaved in time order, each user's charges spread evenly over the hour.
  for (let k = 0; k < perUser; k++) {
    for (let u = 0; u < users; u++) {
      const at = START_MS + Math.floor(((k * users + u) * HOUR_MS) / (users * perUser));
      out.push({ type: 'charge', eventId: `${prefix}-${u}-${k}`, userId: `${prefix}-u${u}`, merchantId: 'm-1', cardId: `card-${prefix}-${u}`, amount: 1, occurredAt: new Date(at).toISOString() });
    }
  }
  return out;
}

async function evalUsec(ctx: Context): Promise<{ usec: number; calls: number }> {
  const info = parseInfo(await ctx.redis.info('commandstats'));
  const stat = info.cmdstat_evalsha ?? '';
  return { usec: Number(/usec=(\d+)/.exec(stat)?.[1] ?? 0), calls: Number(/calls=(\d+)/.exec(stat)?.[1] ?? 0) };
}

/** Runs `events` through the rules script in runs of CHARGES_PER_CALL; returns Redis µs per charge. */
async function run(ctx: Context, events: ChargeEvent[], outcomes?: Record<string, number>): Promise<number> {
  const evaluate = defineScript(ctx.redis, evaluateChargesScript);
  // Load the script before measuring (the first EVALSHA would fall back to EVAL).
  await ctx.redis.script('LOAD', evaluateChargesScript.lua);
  const before = await evalUsec(ctx);
  // A call is one shard's (its keys in one slot): each shard's charges in order, CHARGES_PER_CALL a call.
  const byShard = new Map<number, ChargeEvent[]>();
  for (const e of events) {
    const shard = ctx.keys.shardOf(e.userId);
    const list = byShard.get(shard) ?? [];
    if (list.length === 0) byShard.set(shard, list);
    list.push(e);
  }
  const calls = [...byShard.values()].flatMap((shardEvents) =>
    Array.from({ length: Math.ceil(shardEvents.length / CHARGES_PER_CALL) }, (_, c) => shardEvents.slice(c * CHARGES_PER_CALL, (c + 1) * CHARGES_PER_CALL)),
  );
  for (const call of calls) {
    const items = call.map((event) => ({ event, occurredAtMs: Date.parse(event.occurredAt), clockMs: Date.parse(event.occurredAt) }));
    const { keys, args } = ctx.rules.scriptCall(items, Date.now());
    const replies = (await evaluate(ctx.redis, keys, args)) as string[];
    for (const [i, reply] of replies.entries()) {
      const r = parseChargeReply(reply, ctx.rules.recordGenerationAt(items[i]!.occurredAtMs));
      if (r.kind === 'error') throw new Error(`rules script failed: ${r.message}`);
      if (outcomes && r.kind === 'new') outcomes[r.summary.outcome] = (outcomes[r.summary.outcome] ?? 0) + 1;
    }
  }
  const after = await evalUsec(ctx);
  return (after.usec - before.usec) / events.length;
}

export async function benchHotCard(ctx: Context, count: number): Promise<HotCardResult> {
  const hotOutcomes: Record<string, number> = {};
  // Everyday first, then the hot card, then everyday again: the better of the two everyday runs is the reference.
  const everydayA = await run(ctx, charges('e1', Math.max(1, Math.round(count / 10)), 10));
  const hotUsPerCharge = await run(ctx, charges('hot', 1, count), hotOutcomes);
  const everydayB = await run(ctx, charges('e2', Math.max(1, Math.round(count / 10)), 10));
  const everydayUsPerCharge = Math.min(everydayA, everydayB);
  const token = ctx.cards.token('card-hot-0');
  const window = (await ctx.redis.hget(ctx.keys.ruleState('hot-u0'), `c:${token}`)) ?? '';
  return {
    charges: count,
    hotUsPerCharge: Math.round(hotUsPerCharge * 10) / 10,
    everydayUsPerCharge: Math.round(everydayUsPerCharge * 10) / 10,
    ratio: Math.round((hotUsPerCharge / everydayUsPerCharge) * 100) / 100,
    hotWindowEntries: window === '' ? 0 : window.split(' ').length,
    thinAbove: thinAbove(ctx.settings.config.rules.sameCardBurst, ctx.settings.config.events.maxFutureSkewSeconds),
    hotWindowBytes: Buffer.byteLength(window),
    hotOutcomes,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  runCommand(
    {
      name: 'bench:hot-card',
      summary: "Hammers one card (3,000 charges in an hour) against everyday traffic (10 an hour per card), the same number of charges, and prints Redis µs per charge for both: a card's cost stays bounded whatever its traffic.",
      usage: ['[options]'],
      options: {
        charges: { type: 'string', arg: 'N', default: '10000', help: 'charges per side, at least 10' },
        'redis-url': { type: 'string', arg: '<url>', help: 'a Redis to use (default: a private redis-server)' },
      },
      examples: ['npm run bench:hot-card', 'npm run bench:hot-card -- --charges 3000'],
    },
    async ({ values }) => {
      const count = wholeNumberOption('charges', values.charges, 10_000, { min: 10 });
      const server = values['redis-url'] ? undefined : await startRedisServer();
      const url = values['redis-url'] ?? server!.url;
      const ctx = createContext(loadSettings({ namespace: `bench-hot-${Date.now().toString(36)}`, env: {} }), url, silentLogger);
      try {
        const r = await benchHotCard(ctx, count);
        process.stdout.write(
          [
            `hot card: ${r.charges} charges in one hour on one card: ${r.hotUsPerCharge} µs of Redis per charge`,
            `everyday: 10 charges an hour per card, ${r.charges} in all: ${r.everydayUsPerCharge} µs per charge`,
            `ratio hot / everyday: ${r.ratio}`,
            `hot card window at the end: ${r.hotWindowEntries} times (bound ${r.thinAbove}), ${r.hotWindowBytes} bytes`,
            `hot card outcomes: ${JSON.stringify(r.hotOutcomes)}`,
          ].join('\n') + '\n',
        );
      } finally {
        await ctx.close();
        await server?.stop();
      }
    },
  );
}

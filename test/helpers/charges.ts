/** Charges for tests that drive the processor directly, and their stored decisions. */
import { loadSettings } from '../../src/config.ts';
import type { Context } from '../../src/context.ts';
import type { ScriptEnv } from '../../src/rules/rule.ts';
import { parseDecision, type Decision } from '../../src/decisions/decision.ts';
import type { ChargeEvent } from '../../src/events/schema.ts';
import { testBatch } from './batch.ts';

let seq = 0;

/** A valid charge with a fresh eventId (e-<n>): user u-1, merchant m-1, 100 CNY, 2026-03-10 10:00 local. */
export function testCharge(over: Partial<ChargeEvent> = {}): ChargeEvent {
  return {
    type: 'charge',
    eventId: `e-${++seq}`,
    userId: 'u-1',
    merchantId: 'm-1',
    cardId: '6222021234567890128',
    amount: 10_000,
    occurredAt: '2026-03-10T10:00:00+08:00',
    ...over,
  };
}

/** Decides the charges as one batch stamped with the producer clock `clockMs`, and reads their decisions back. */
export async function decideBatch(ctx: Context, events: ChargeEvent[], clockMs: number): Promise<Decision[]> {
  await ctx.processor.process(testBatch(events, { clockMs }), `test:${++seq}`);
  return Promise.all(events.map(async (e) => parseDecision((await ctx.redis.get(ctx.keys.decision(ctx.keys.shardOf(e.userId), e.eventId)))!)));
}

/** What a rule's scriptConfig() sees besides its configuration, as the default configuration gives it. */
export function testScriptEnv(): ScriptEnv {
  const { config } = loadSettings({ env: {} });
  return { maxFutureSkewSeconds: config.events.maxFutureSkewSeconds, calibration: config.calibration };
}

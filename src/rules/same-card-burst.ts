/**
 * same_card_burst: the same card charged minCount times within the window (seed: 同卡 10 分钟 3 次). Kept state: per
 * card, the times of its charges within the card retention of its newest one, thinned (evaluateCharges-n.lua).
 */
import { z } from 'zod';
import { defineRule } from './rule.ts';

export const sameCardBurst = defineRule({
  name: 'same_card_burst',
  configKey: 'sameCardBurst',
  outcome: 'review',
  config: z.strictObject({
    /** Window (t − window, t] in seconds. @defaultValue 600 */
    windowSeconds: z.number().int().min(1).max(86_400),
    /** Charges in the window (this one included) that trigger review. @defaultValue 3 */
    minCount: z.number().int().min(2).max(1_000),
    /** How late (by event time) a charge may arrive and still see its whole window. @defaultValue 3600 */
    lateToleranceSeconds: z.number().int().min(0).max(7 * 86_400),
  }),
  defaults: { windowSeconds: 600, minCount: 3, lateToleranceSeconds: 3_600 },
  firesWhen: (c) => `≥ ${c.minCount} charges on the card with \`occurredAt\` in (t − ${windowLabel(c.windowSeconds)}, t], this one included, every outcome counted`,
  lua: new URL('./same-card-burst.lua', import.meta.url),
  // The state kept (how long, how thinned) follows the configuration the workers started with; a published
  // configuration may only ask for what that state holds (liveCheck).
  scriptConfig: (c, started, env) => ({
    windowMs: c.windowSeconds * 1000,
    minCount: c.minCount,
    windowLabel: windowLabel(c.windowSeconds),
    retentionMs: cardRetentionSeconds(started, env.maxFutureSkewSeconds) * 1000,
    thinAbove: thinAbove(started, env.maxFutureSkewSeconds),
    thinBucketMs: started.windowSeconds * 1000,
    thinKeep: started.minCount - 1,
    fieldPrefix: CARD_FIELD_PREFIX,
  }),
  state: [{ field: 'c:<cardToken>', value: "the card's charge times within its retention, base-36 ms, space-separated, in time order (thinned)" }],
  liveCheck: (started, candidate) => {
    const problems: { path: string[]; message: string }[] = [];
    const restart = 'publish it by restarting the workers with it';
    if (candidate.windowSeconds > started.windowSeconds) {
      problems.push({ path: ['windowSeconds'], message: `at most ${started.windowSeconds} live: the card windows kept hold no more (${restart})` });
    }
    if (candidate.minCount > started.minCount) {
      problems.push({ path: ['minCount'], message: `at most ${started.minCount} live: a busy card's window is thinned to what that count needs (${restart})` });
    }
    if (candidate.lateToleranceSeconds !== started.lateToleranceSeconds) {
      problems.push({ path: ['lateToleranceSeconds'], message: `${started.lateToleranceSeconds} live: it sets how long card windows are kept (${restart})` });
    }
    return problems;
  },
});

type BurstConfig = { windowSeconds: number; minCount: number; lateToleranceSeconds: number };

/** "10 min", or "45 s" when the window is not whole minutes: as reasons and docs say it. */
export function windowLabel(windowSeconds: number): string {
  return windowSeconds % 60 === 0 ? `${windowSeconds / 60} min` : `${windowSeconds} s`;
}

/**
 * How long a card's times are kept behind its newest one: the burst window, the late tolerance, and the skew by
 * which that newest charge may lead the clock, so a charge up to lateTolerance behind the clock sees its whole
 * window.
 */
export function cardRetentionSeconds(burst: BurstConfig, maxFutureSkewSeconds: number): number {
  return burst.windowSeconds + burst.lateToleranceSeconds + maxFutureSkewSeconds;
}

/**
 * How many times a card window holds before it is thinned: 2·(minCount − 1) per burst-window-long bucket of the
 * card retention. Thinning keeps, per bucket, its minCount − 1 oldest and newest times, which is all a burst count
 * can need: any window (t − w, t] is the newest part of one bucket plus the oldest part of the next, so it still
 * holds at least min(true count, minCount − 1) of them, and the rule's outcome is unchanged.
 */
export function thinAbove(burst: BurstConfig, maxFutureSkewSeconds: number): number {
  const buckets = Math.ceil(cardRetentionSeconds(burst, maxFutureSkewSeconds) / burst.windowSeconds) + 1;
  return 2 * (burst.minCount - 1) * buckets;
}

/** Its state, in the user's rule-state hash (src/rules/rule-state.ts): a card window per card, "c:<cardToken>". */
export const CARD_FIELD_PREFIX = 'c:';

/** Charge times as the script keeps them: base-36 milliseconds, space-separated (8 characters until 2059). */
export function encodeWindow(times: readonly number[]): string {
  return times.map((t) => t.toString(36)).join(' ');
}

export function decodeWindow(value: string): number[] {
  return value === '' ? [] : value.split(' ').map((s) => parseInt(s, 36));
}

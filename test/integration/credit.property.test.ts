/**
 * Credit against the reference model (test/helpers/reference-model.ts), on real Redis: random streams of openings,
 * charges, repayments and refunds of a few users, some events timed before the opening, some repeated, a holiday
 * uplift on the second day, cut into batches at random. Every charge's outcome, rules and available credit, every
 * account event's acceptance, every user's outstanding balance and the credit total must be the model's.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { BatchJobData } from '../../src/pipeline/batch-job.ts';
import { parseDecision } from '../../src/decisions/decision.ts';
import { dropContext, testContext } from '../helpers/context.ts';
import { decisionKey } from '../helpers/shards.ts';
import { ReferenceModel, type ModelAccountEvent, type ModelCharge } from '../helpers/reference-model.ts';

const USERS = ['u0', 'u1', 'u2'];
const ANCHOR = Date.parse('2026-03-10T08:00:00+08:00');
const CONFIG = { calibration: { holidayUplifts: [{ name: 'test', from: '2026-03-11', to: '2026-03-12', percent: 25 }] }, pipeline: { shards: 2 } };

type Step =
  | { kind: 'open'; user: number; quota: number; channel: 'invited' | 'applied' }
  | { kind: 'charge'; user: number; amount: number; card: number }
  | { kind: 'repay'; user: number; amount: number }
  | { kind: 'refund'; user: number; of: number; amount: number }
  | { kind: 'repeat'; back: number };

const stepArb: fc.Arbitrary<{ step: Step; advanceMin: number; backdateMin: number }> = fc.record({
  step: fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('open' as const), user: fc.nat(2), quota: fc.oneof(fc.constantFrom(30_000, 29_999, 800_000, 50_000), fc.integer({ min: 30_000, max: 120_000 })), channel: fc.constantFrom('invited' as const, 'applied' as const) }) },
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('charge' as const), user: fc.nat(2), amount: fc.oneof(fc.integer({ min: 1, max: 60_000 }), fc.constantFrom(1, 10_000, 30_000)), card: fc.nat(3) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('repay' as const), user: fc.nat(2), amount: fc.integer({ min: 1, max: 50_000 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('refund' as const), user: fc.nat(2), of: fc.nat(20), amount: fc.integer({ min: 1, max: 30_000 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('repeat' as const), back: fc.nat(10) }) },
  ),
  advanceMin: fc.integer({ min: 0, max: 60 }),
  // Now and then an event timed before the ones sent before it (up to 3 hours): before an opening, say.
  backdateMin: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 180 }) }),
});

type Event = (ModelCharge & { type: 'charge' }) | ModelAccountEvent;

/** The steps as events in production order, each with its time; refunds name an earlier charge. */
function eventsOf(steps: { step: Step; advanceMin: number; backdateMin: number }[], tag: string): Event[] {
  const events: Event[] = [];
  const charges: { id: string; user: string }[] = [];
  let t = ANCHOR;
  steps.forEach(({ step, advanceMin, backdateMin }, i) => {
    t += advanceMin * 60_000;
    const occurredAt = new Date(t - backdateMin * 60_000).toISOString();
    const eventId = `${tag}-${i}`;
    switch (step.kind) {
      case 'open':
        events.push({ type: 'account_opened', eventId, userId: USERS[step.user]!, channel: step.channel, quota: step.quota, occurredAt });
        break;
      case 'charge':
        events.push({ type: 'charge', eventId, userId: USERS[step.user]!, merchantId: 'm', cardId: `card-${step.user}-${step.card}`, amount: step.amount, occurredAt });
        charges.push({ id: eventId, user: USERS[step.user]! });
        break;
      case 'repay':
        events.push({ type: 'repayment', eventId, userId: USERS[step.user]!, amount: step.amount, dueAt: '2026-04-01T00:00:00.000+08:00', paidAt: occurredAt, occurredAt });
        break;
      case 'refund': {
        const of = charges.length ? charges[step.of % charges.length]! : { id: `${tag}-none`, user: USERS[step.user]! };
        // Mostly the charge's own user; sometimes another's.
        events.push({ type: 'refund', eventId, userId: step.user === 0 ? USERS[1]! : of.user, chargeId: of.id, amount: step.amount, occurredAt });
        break;
      }
      case 'repeat':
        if (events.length) events.push(events[Math.max(0, events.length - 1 - step.back)]!);
    }
  });
  return events;
}

describe('credit against the reference model', () => {
  test('outcomes, available credit, acceptance and balances agree', async () => {
    let declined = 0;
    let rejected = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 10, maxLength: 60 }), fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 10 }), async (steps, cuts) => {
        const ctx = testContext(CONFIG);
        try {
          const events = eventsOf(steps, ctx.keys.namespace);
          const model = ReferenceModel.fromConfig(ctx.settings.config);
          // The replay clock: the latest occurredAt sent so far.
          let clock = -Infinity;
          const clocks = events.map((e) => (clock = Math.max(clock, Date.parse(e.occurredAt))));
          const expected = events.map((e, i) => {
            if (e.type === 'charge') {
              const r = model.applyAt(e, clocks[i]);
              if (r.kind === 'refused') throw new Error(`model refused ${e.eventId}: ${r.reason}`);
              return { outcome: r.decision.outcome, rules: r.decision.rules, creditAvailable: r.decision.creditAvailable };
            }
            const r = model.applyAccountEvent(e);
            return { outcome: r.kind === 'rejected' ? 'rejected' : 'accepted' };
          });

          const got: { outcome: string; rules?: string[]; creditAvailable?: number | null }[] = [];
          for (let from = 0, k = 0; from < events.length; k++) {
            const to = Math.min(events.length, from + cuts[k % cuts.length]!);
            const batch: BatchJobData = { v: 2, events: events.slice(from, to), clocks: clocks.slice(from, to), claimed: false, enqueuedAt: Date.now() };
            const results = await ctx.processor.process(batch, `prop:${k}`);
            for (const [i, r] of results.entries()) {
              if (r.outcome === 'approve' || r.outcome === 'review' || r.outcome === 'decline') {
                const d = parseDecision((await ctx.redis.get(decisionKey(ctx.keys, events[from + i]!.userId, r.eventId!)))!);
                got.push({ outcome: d.outcome, rules: d.rules, creditAvailable: d.observed.creditAvailable });
              } else {
                got.push({ outcome: r.outcome });
              }
            }
            from = to;
          }
          expect(got).toEqual(expected);
          for (const user of USERS) {
            const owed = model.outstanding(user);
            const stored = await ctx.redis.hget(ctx.keys.account(user), 'owed');
            expect(stored === null ? undefined : Number(stored), user).toBe(owed);
          }
          // The credit total, kept per shard: each shard's is its users' outstanding, and together the model's total.
          let total = 0;
          for (const shard of ctx.keys.shardIds) {
            const owed = Number((await ctx.redis.hget(ctx.keys.creditTotals(shard), 'owed')) ?? 0);
            const usersOwed = USERS.filter((u) => ctx.keys.shardOf(u) === shard).reduce((sum, u) => sum + (model.outstanding(u) ?? 0), 0);
            expect(owed, `shard ${shard}`).toBe(usersOwed);
            total += owed;
          }
          expect(total).toBe(model.totalOutstanding());
          declined += expected.filter((e) => e.rules?.includes('credit_limit')).length;
          rejected += expected.filter((e) => e.outcome === 'rejected').length;
        } finally {
          await dropContext(ctx);
        }
      }),
      { numRuns: 60, seed: Number(process.env.SEED ?? 1_313) },
    );
    // The streams reach both sides of the rule and of the account events.
    expect(declined).toBeGreaterThan(20);
    expect(rejected).toBeGreaterThan(20);
  });
});

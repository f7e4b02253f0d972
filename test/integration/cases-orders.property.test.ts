/**
 * Settlement exactly once in every order: random sequences of what people and the system do to two held charges
 * (analysts taking, releasing and cancelling, supervisors approving, settlement runs at advancing instants, refunds,
 * complaints), against a real Redis, then a run long after every deadline. Whatever the order, each charge is paid
 * at most once, never while a case holds it; what the merchant keeps is the charge less what went back; the credit
 * owed is what was not given back; a cancelled case's charge is wholly refunded.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { CaseError } from '../../src/cases/case-queue.ts';
import type { Context } from '../../src/context.ts';
import { testBatch } from '../helpers/batch.ts';
import { dropContext, testContext } from '../helpers/context.ts';
import { opened } from '../helpers/quota.ts';

const HOUR = 3_600_000;
/** The charges occur 2026-03-10 10:00 Shanghai: T+1 is 19:00Z that day, the hold ends 48 h later. */
const T1 = Date.parse('2026-03-10T19:00:00Z');
const FOUR_EYES = 5_000;
const AMOUNTS = [3_000, 8_000] as const;

type Action =
  | { k: 'next'; who: string }
  | { k: 'release' | 'cancel'; c: 0 | 1; who: string; supervisor: boolean }
  | { k: 'approve'; c: 0 | 1; who: string }
  | { k: 'run' }
  | { k: 'refund'; c: 0 | 1; amount: number }
  | { k: 'complaint'; c: 0 | 1 };

const person = fc.constantFrom('ana', 'ben', 'sam', 'sue');
const charge = fc.constantFrom(0 as const, 1 as const);
const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ k: fc.constant('next' as const), who: person }),
  fc.record({ k: fc.constantFrom('release' as const, 'cancel' as const), c: charge, who: person, supervisor: fc.boolean() }),
  fc.record({ k: fc.constant('approve' as const), c: charge, who: person }),
  fc.record({ k: fc.constant('run' as const) }),
  fc.record({ k: fc.constant('refund' as const), c: charge, amount: fc.integer({ min: 1, max: 2_000 }) }),
  fc.record({ k: fc.constant('complaint' as const), c: charge }),
);
const step = fc.record({ action, afterMs: fc.integer({ min: 0, max: 14 * HOUR }) });

let ctx: Context | undefined;
afterEach(async () => {
  if (ctx) await dropContext(ctx);
  ctx = undefined;
});

describe('cases in every order', () => {
  it('pay each charge at most once, never while held, and keep the money and the credit whole', { timeout: 240_000 }, async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), fc.constantFrom('auto_release' as const, 'extend' as const), async (steps, onDeadline) => {
        ctx = testContext({ cases: { fourEyesAboveFen: FOUR_EYES, onDeadline, extendHours: 24, maxExtendHours: 48 } });
        const c = ctx;
        const users = ['u0', 'u1'];
        const chargeIds = users.map((u) => `${u}-c3`);
        // Two users, each with a credit account and a burst on one card: the third charge is held for review. One
        // batch per user, as a shard queue carries them.
        for (const [i, u] of users.entries()) {
          const events = [
            opened(u, '2026-03-01T10:00:00+08:00', 1_000_000),
            ...[0, 1, 2].map((m) => ({ type: 'charge', eventId: `${u}-c${m + 1}`, userId: u, merchantId: `m${i}`, cardId: `card-${u}`, amount: m < 2 ? 100 : AMOUNTS[i], occurredAt: `2026-03-10T10:0${m}:00+08:00` })),
          ];
          const decided = await c.processor.process(testBatch(events), `prop:setup:${u}`);
          expect(decided.map((r) => r.outcome)).toEqual(['accepted', 'approve', 'approve', 'review']);
        }

        let t = T1 - 2 * HOUR;
        let n = 0;
        /** The case each charge's actions go to: its review case, or the complaint's that reopened it. */
        const caseOf = [...chargeIds];
        /** A reversal's id (a refund's or a complaint's case) → the charge it gives back. */
        const reversalOf = new Map<string, number>();
        const send = async (event: Record<string, unknown>) => (await c.processor.process(testBatch([event], { clockMs: t }), `prop:${n}`))[0]!;
        for (const { action: a, afterMs } of steps) {
          t += afterMs;
          n++;
          const at = new Date(t).toISOString();
          try {
            if (a.k === 'next') await c.cases.next(a.who, t);
            else if (a.k === 'release') await c.cases.release(caseOf[a.c]!, a.who, 'prop', t);
            else if (a.k === 'cancel') await c.cases.cancel(caseOf[a.c]!, a.who, a.supervisor, 'prop', t);
            else if (a.k === 'approve') await c.cases.approve(caseOf[a.c]!, a.who, 'prop', t);
            else if (a.k === 'run') await c.ledger.releaseDue(t);
            else if (a.k === 'refund') {
              const id = `r${n}`;
              reversalOf.set(id, a.c);
              await send({ type: 'refund', eventId: id, userId: users[a.c], chargeId: chargeIds[a.c], amount: a.amount, occurredAt: at });
            } else {
              const id = `cp${n}`;
              const r = await send({ type: 'complaint', eventId: id, userId: users[a.c], chargeId: chargeIds[a.c], reason: 'prop', occurredAt: at });
              expect(r.outcome).toBe('accepted');
              if (await c.cases.get(id)) {
                caseOf[a.c] = id;
                reversalOf.set(id, a.c);
              }
            }
          } catch (e) {
            // A person's refused action (held by another, closed, not theirs to approve) changes nothing.
            if (!(e instanceof CaseError)) throw e;
          }
        }
        // Long after every deadline and extension.
        await c.ledger.releaseDue(t + 30 * 24 * HOUR);

        const log = await settlementEntries(c);
        for (const [i, chargeId] of chargeIds.entries()) {
          const paid = log.filter((e) => e.eventId === chargeId);
          const reversed = log.filter((e) => reversalOf.get(e.eventId) === i);
          const shard = c.keys.shardOf(users[i]!);
          const held = (await c.redis.zscore(c.keys.settlementDue(shard), chargeId)) !== null;
          const refunded = Number((await c.redis.hget(c.keys.refunds(users[i]!), chargeId)) ?? 0);
          const what = `charge ${i} (${JSON.stringify(steps.map((s) => s.action))}, ${onDeadline})`;
          expect(paid.length, `${what}: paid at most once`).toBeLessThanOrEqual(1);
          if (held) expect(paid, `${what}: never paid while held`).toEqual([]);
          const net = paid.reduce((s, e) => s + e.gross, 0) + reversed.reduce((s, e) => s + e.gross, 0);
          expect(net, `${what}: the merchant keeps the charge less what went back`).toBe(held ? 0 : AMOUNTS[i]! - refunded);
          expect(reversed.every((e) => e.gross < 0), what).toBe(true);
          // The burst's two approved charges (100 fen each) stay owed; the held one less what went back.
          expect(Number(await c.redis.hget(c.keys.account(users[i]!), 'owed')), `${what}: credit owed`).toBe(200 + AMOUNTS[i]! - refunded);
          for (const id of new Set([chargeIds[i]!, caseOf[i]!])) {
            const k = await c.cases.get(id);
            if (k?.outcome === 'cancelled') expect(refunded, `${what}: a cancelled case's charge is all given back`).toBe(AMOUNTS[i]);
            if (k?.status === 'pending_approval') expect(held, `${what}: a release waiting for approval holds its money`).toBe(true);
          }
        }
        const stats = await c.ledger.stats();
        expect(stats.scheduledCount, 'nothing scheduled is left unpaid').toBe(0);
        await dropContext(c);
        ctx = undefined;
        runs++;
      }),
      { numRuns: 150, endOnFailure: true },
    );
    expect(runs).toBe(150);
  });
});

/** Every settlement the runs paid (reversals negative), from each shard's settlement log. */
async function settlementEntries(c: Context): Promise<{ eventId: string; gross: number }[]> {
  const out: { eventId: string; gross: number }[] = [];
  for (const shard of c.keys.shardIds) {
    for (const [, f] of await c.redis.xrange(c.keys.settlementLog(shard), '-', '+')) {
      const m = Object.fromEntries(f.flatMap((v, i) => (i % 2 === 0 ? [[v, f[i + 1]!]] : [])));
      out.push({ eventId: m.s!, gross: Number(m.g) });
    }
  }
  return out;
}

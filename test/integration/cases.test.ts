/**
 * The review queue against a real Redis: every review decision opens a case that holds its settlement; analysts
 * take, release and cancel, supervisors approve above four eyes; a case still open at its deadline gets the
 * configured default in the settlement run. The money moves once, whatever the order.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import { CaseError } from '../../src/cases/case-queue.ts';
import type { CaseRecord } from '../../src/cases/case.ts';
import { dropContext, testContext } from '../helpers/context.ts';
import { testBatch } from '../helpers/batch.ts';
import { opened } from '../helpers/quota.ts';
import { settledOn } from '../helpers/settlement.ts';

let ctx: Context;
afterEach(async () => {
  if (ctx) await dropContext(ctx);
});

const HOUR = 3_600_000;
const run = (events: unknown[]) => ctx.processor.process(testBatch(events), `test:${Math.random()}`);

/**
 * Three charges of `userId` on one card within ten minutes: the third goes to review (same_card_burst). Occurred
 * 2026-03-10 10:00 Shanghai: T+1 is 2026-03-11 03:00 (19:00Z on the 10th), the hold ends 48 h later.
 */
async function reviewCharge(userId: string, amount = 10_000, events: unknown[] = []): Promise<string> {
  const id = `${userId}-c3`;
  const at = (m: number) => `2026-03-10T10:0${m}:00+08:00`;
  const c = (eventId: string, m: number, amt: number) => ({ type: 'charge', eventId, userId, merchantId: 'm-cases', cardId: `card-${userId}`, amount: amt, occurredAt: at(m) });
  const results = await run([...events, c(`${userId}-c1`, 0, 100), c(`${userId}-c2`, 1, 100), c(id, 2, amount)]);
  expect(results.at(-1)).toMatchObject({ eventId: id, outcome: 'review' });
  return id;
}
const T1 = Date.parse('2026-03-10T19:00:00Z');
const DEADLINE = T1 + 48 * HOUR;

async function caseLog(shardOf: string): Promise<{ action: string; by: string; note: string }[]> {
  const shard = ctx.keys.shardOf(shardOf);
  return (await ctx.redis.xrange(ctx.keys.caseLog(shard), '-', '+')).map(([, f]) => {
    const m = Object.fromEntries(f.flatMap((v, i) => (i % 2 === 0 ? [[v, f[i + 1]!]] : [])));
    return { action: m.a!, by: m.by!, note: m.note ?? '' };
  });
}

async function refused(p: Promise<unknown>): Promise<{ status: number; message: string }> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(CaseError);
  return { status: (e as CaseError).status, message: (e as CaseError).message };
}

describe('cases', () => {
  it('a review decision opens a case holding its settlement until its deadline', async () => {
    ctx = testContext();
    const id = await reviewCharge('u-open');
    const c = (await ctx.cases.get(id))!;
    expect(c).toMatchObject({ id, chargeId: id, userId: 'u-open', merchantId: 'm-cases', amount: 10_000, status: 'open', opened: 'review', t1Ms: T1, deadlineMs: DEADLINE, rules: ['same_card_burst'], seq: 1 });
    expect((await ctx.cases.list('open', T1, 10)).map((x) => x.id)).toEqual([id]);
    expect(await caseLog('u-open')).toEqual([{ action: 'opened', by: 'system', note: '' }]);
    // The approved charges of the burst are paid T+1; the case's waits.
    await ctx.ledger.releaseDue(T1);
    expect(Object.keys(await settledOn(ctx)).sort()).toEqual(['u-open-c1', 'u-open-c2']);
  });

  it('two analysts racing for one case: one gets it, the other nothing; one analyst may hold several', async () => {
    ctx = testContext({ pipeline: { shards: 4 } });
    const a = await reviewCharge('u-race-a');
    const [x, y] = await Promise.all([ctx.cases.next('alice', T1), ctx.cases.next('bob', T1)]);
    expect([x?.id, y?.id].filter(Boolean)).toEqual([a]);
    const b = await reviewCharge('u-race-b');
    const c = await reviewCharge('u-race-c');
    const holder = x ? 'alice' : 'bob';
    const more = [await ctx.cases.next(holder, T1), await ctx.cases.next(holder, T1)];
    expect(more.map((m) => m!.id).sort()).toEqual([b, c].sort());
    expect(await ctx.cases.next('carol', T1)).toBeUndefined();
    expect((await ctx.cases.list('locked', T1, 10)).map((m) => [m.id, m.lockedBy])).toHaveLength(3);
    expect((await ctx.cases.counts(T1))).toMatchObject({ open: 0, locked: 3, pendingApproval: 0 });
  });

  it('a lock expires after cases.lockMinutes: another analyst takes the case, and the expiry is logged', async () => {
    ctx = testContext({ cases: { lockMinutes: 1 } });
    const id = await reviewCharge('u-lock');
    expect((await ctx.cases.next('alice', T1))!.lockedBy).toBe('alice');
    expect(await ctx.cases.next('bob', T1 + 59_000)).toBeUndefined();
    expect((await refused(ctx.cases.release(id, 'bob', '', T1 + 59_000))).status).toBe(409);
    const taken = await ctx.cases.next('bob', T1 + 60_001);
    expect(taken).toMatchObject({ id, lockedBy: 'bob' });
    expect((await refused(ctx.cases.release(id, 'alice', 'mine', T1 + 61_000))).message).toMatch(/held by bob/);
    expect((await caseLog('u-lock')).map((l) => [l.action, l.by])).toEqual([
      ['opened', 'system'],
      ['taken', 'alice'],
      ['lock_expired', 'system'],
      ['taken', 'bob'],
    ]);
  });

  it('a release is paid at the later of its T+1 instant and the next run; closed cases refuse more actions', async () => {
    ctx = testContext();
    const id = await reviewCharge('u-rel');
    await ctx.cases.next('alice', T1 - HOUR);
    const released = await ctx.cases.release(id, 'alice', 'known customer', T1 - HOUR);
    expect(released).toMatchObject({ status: 'closed', outcome: 'released', closedBy: 'alice' });
    // Released before its T+1 instant: not paid before it.
    await ctx.ledger.releaseDue(T1 - 1);
    expect(await settledOn(ctx)).toEqual({});
    await ctx.ledger.releaseDue(T1 + 5_000);
    expect((await settledOn(ctx))[id]).toBe('2026-03-11');
    expect((await refused(ctx.cases.release(id, 'alice', '', T1 + 6_000))).status).toBe(409);
    expect((await refused(ctx.cases.cancel(id, 'alice', false, 'late', T1 + 6_000))).status).toBe(409);
    expect((await refused(ctx.cases.release('no-such-case', 'alice', '', T1))).status).toBe(404);
    expect((await caseLog('u-rel')).map((l) => [l.action, l.note])).toEqual([
      ['opened', ''],
      ['taken', ''],
      ['released', 'known customer'],
    ]);
  });

  it('four eyes: a release above the amount waits for a supervisor other than the releaser, its money held', async () => {
    ctx = testContext({ cases: { fourEyesAboveFen: 5_000 } });
    const id = await reviewCharge('u-four', 8_000);
    const asked = await ctx.cases.release(id, 'sam', 'fine', T1);
    expect(asked).toMatchObject({ status: 'pending_approval', releasedBy: 'sam' });
    // Held past its deadline: a pending approval never auto-releases.
    await ctx.ledger.releaseDue(DEADLINE + HOUR);
    expect(await settledOn(ctx)).not.toHaveProperty(id);
    expect((await ctx.ledger.pending()).find((p) => p.eventId === id)?.settleAt).toBeNull();
    expect((await refused(ctx.cases.approve(id, 'sam', '', DEADLINE + HOUR))).status).toBe(403);
    expect((await refused(ctx.cases.release(id, 'sam', '', DEADLINE + HOUR))).status).toBe(409);
    expect((await refused(ctx.cases.cancel(id, 'alice', false, 'no', DEADLINE + HOUR))).status).toBe(403);
    const approved = await ctx.cases.approve(id, 'vera', 'checked', DEADLINE + 2 * HOUR);
    expect(approved).toMatchObject({ status: 'closed', outcome: 'released', approvedBy: 'vera' });
    await ctx.ledger.releaseDue(DEADLINE + 2 * HOUR + 1);
    expect(Object.keys(await settledOn(ctx))).toContain(id);
    expect((await caseLog('u-four')).map((l) => [l.action, l.by])).toEqual([
      ['opened', 'system'],
      ['release_requested', 'sam'],
      ['approved', 'vera'],
    ]);
  });

  it('at its deadline an open case is auto-released (the default) and paid once; a later release is refused', async () => {
    ctx = testContext();
    const id = await reviewCharge('u-auto');
    await ctx.cases.next('alice', DEADLINE - HOUR);
    const result = await ctx.ledger.releaseDue(DEADLINE);
    expect(result.caseDeadlines).toMatchObject({ autoReleased: 1, extended: 0, waiting: 0 });
    expect((await settledOn(ctx))[id]).toBe('2026-03-13');
    expect(await ctx.cases.get(id)).toMatchObject({ status: 'closed', outcome: 'auto_released', closedBy: 'system' });
    expect((await refused(ctx.cases.release(id, 'alice', '', DEADLINE + 1))).message).toMatch(/auto_released by system/);
    await ctx.ledger.releaseDue(DEADLINE + HOUR);
    expect(Object.keys(await settledOn(ctx)).filter((e) => e === id)).toHaveLength(1);
  });

  // Found by review: the deadline's auto-release paid a case while an analyst held it (about to cancel a fraud).
  it('a case an analyst holds is not auto-released under them: it is due again when the lock expires', async () => {
    ctx = testContext({ cases: { lockMinutes: 15 } });
    const id = await reviewCharge('u-held');
    await ctx.cases.next('alice', DEADLINE - 5 * 60_000);
    expect((await ctx.ledger.releaseDue(DEADLINE)).caseDeadlines).toMatchObject({ autoReleased: 0, waiting: 1 });
    await ctx.cases.cancel(id, 'alice', false, 'fraud', DEADLINE + 60_000);
    await ctx.ledger.releaseDue(DEADLINE + HOUR);
    expect(await settledOn(ctx)).not.toHaveProperty(id);
    // Another one whose analyst walked away: paid once the lock has expired.
    const other = await reviewCharge('u-walked');
    await ctx.cases.next('bob', DEADLINE - 5 * 60_000);
    await ctx.ledger.releaseDue(DEADLINE);
    expect(await settledOn(ctx)).not.toHaveProperty(other);
    expect((await ctx.ledger.releaseDue(DEADLINE + 10 * 60_000 + 1)).caseDeadlines.autoReleased).toBe(1);
    expect(await settledOn(ctx)).toHaveProperty(other);
  });

  it('with onDeadline "extend" the deadline moves until the maximum, then the case is auto-released', async () => {
    ctx = testContext({ cases: { onDeadline: 'extend', extendHours: 24, maxExtendHours: 36 } });
    const id = await reviewCharge('u-ext');
    expect((await ctx.ledger.releaseDue(DEADLINE)).caseDeadlines.extended).toBe(1);
    expect(await ctx.cases.get(id)).toMatchObject({ deadlineMs: DEADLINE + 24 * HOUR, extensions: 1, status: 'open' });
    expect((await ctx.cases.list('open', DEADLINE, 10))[0]!.deadlineMs).toBe(DEADLINE + 24 * HOUR);
    expect((await ctx.ledger.releaseDue(DEADLINE + 24 * HOUR)).caseDeadlines.extended).toBe(1);
    expect(await ctx.cases.get(id)).toMatchObject({ deadlineMs: DEADLINE + 36 * HOUR, extensions: 2 });
    expect(await settledOn(ctx)).not.toHaveProperty(id);
    expect((await ctx.ledger.releaseDue(DEADLINE + 36 * HOUR)).caseDeadlines.autoReleased).toBe(1);
    expect(await settledOn(ctx)).toHaveProperty(id);
  });

  it('a case above four eyes waits past its deadline for a person; a cancel then means it is never paid', async () => {
    ctx = testContext({ cases: { fourEyesAboveFen: 5_000 } });
    const id = await reviewCharge('u-wait', 9_000);
    expect((await ctx.ledger.releaseDue(DEADLINE)).caseDeadlines.waiting).toBe(1);
    expect((await ctx.ledger.releaseDue(DEADLINE + HOUR)).caseDeadlines.waiting).toBe(0);
    expect(await ctx.cases.get(id)).toMatchObject({ status: 'open', waiting: true });
    const cancelled = await ctx.cases.cancel(id, 'alice', false, 'card testing', DEADLINE + 2 * HOUR);
    expect(cancelled).toMatchObject({ status: 'closed', outcome: 'cancelled', cancelledFen: 9_000, reversed: false });
    await ctx.ledger.releaseDue(DEADLINE + 30 * 24 * HOUR);
    expect(await settledOn(ctx)).not.toHaveProperty(id);
    expect((await ctx.ledger.pending()).map((p) => p.eventId)).not.toContain(id);
    expect((await caseLog('u-wait')).map((l) => l.action)).toEqual(['opened', 'deadline_waiting', 'cancelled']);
  });

  it('a cancel gives the credit back, leaves nothing to settle, and refuses a later refund', async () => {
    ctx = testContext();
    const user = 'u-credit';
    const id = await reviewCharge(user, 10_000, [opened(user, '2026-03-01T10:00:00+08:00', 1_000_000)]);
    expect(await ctx.redis.hget(ctx.keys.account(user), 'owed')).toBe(String(10_200));
    const c = await ctx.cases.cancel(id, 'alice', false, 'fraud', T1 + HOUR);
    expect(c).toMatchObject({ creditGivenBackFen: 10_000, cancelledFen: 10_000 });
    expect(await ctx.redis.hget(ctx.keys.account(user), 'owed')).toBe(String(200));
    await ctx.ledger.releaseDue(DEADLINE + HOUR);
    expect(await settledOn(ctx)).not.toHaveProperty(id);
    const [refund] = await run([{ type: 'refund', eventId: 'r-after-cancel', userId: user, chargeId: id, amount: 1, occurredAt: '2026-03-12T10:00:00+08:00' }]);
    expect(refund).toMatchObject({ outcome: 'rejected' });
    expect(refund!.error).toMatch(/more than what is left/);
    expect((await ctx.ledger.stats()).heldCount).toBe(0);
  });

  it('without an archive, closed cases leave Redis once older than the retention (dropClosed); open ones stay', async () => {
    ctx = testContext();
    const closed = await reviewCharge('u-drop-1');
    const open = await reviewCharge('u-drop-2');
    await ctx.cases.release(closed, 'alice', '', T1);
    expect(await ctx.cases.dropClosed(T1)).toBe(0);
    expect(await ctx.cases.dropClosed(T1 + 1)).toBe(1);
    expect(await ctx.cases.get(closed)).toBeUndefined();
    expect(await ctx.cases.get(open)).toMatchObject({ status: 'open' });
  });

  const complaint = (eventId: string, userId: string, chargeId: string, occurredAt: string, reason = 'not my purchase') => ({ type: 'complaint', eventId, userId, chargeId, reason, occurredAt });

  it('a complaint on a charge not yet paid freezes its settlement and opens a case only a person closes', async () => {
    ctx = testContext();
    const [charge] = await run([{ type: 'charge', eventId: 'cp-1', userId: 'u-cp', merchantId: 'm-cases', cardId: 'card-cp', amount: 5_000, occurredAt: '2026-03-10T10:00:00+08:00' }]);
    expect(charge).toMatchObject({ outcome: 'approve' });
    const [filed] = await run([complaint('cmp-1', 'u-cp', 'cp-1', '2026-03-10T12:00:00+08:00', 'card 6222021234567890128 stolen')]);
    expect(filed).toMatchObject({ outcome: 'accepted' });
    const c = (await ctx.cases.get('cmp-1'))!;
    expect(c).toMatchObject({ id: 'cmp-1', chargeId: 'cp-1', opened: 'complaint', frozen: true, paid: false, t1Ms: T1, deadlineMs: T1, amount: 5_000 });
    expect(c.complaint).toMatchObject({ eventId: 'cmp-1', reason: 'card [masked …0128] stolen' });
    // T+1 and long after: held, waiting for a person.
    expect((await ctx.ledger.releaseDue(T1 + 30 * 24 * HOUR)).settled).toBe(0);
    expect(await settledOn(ctx)).not.toHaveProperty('cp-1');
    // The same complaint again changes nothing.
    await run([complaint('cmp-1', 'u-cp', 'cp-1', '2026-03-10T12:00:00+08:00', 'card 6222021234567890128 stolen')]);
    expect((await caseLog('u-cp')).map((l) => [l.action, l.by])).toEqual([['opened', 'complaint']]);
    await ctx.cases.release('cmp-1', 'alice', 'customer confirmed', T1 + 31 * 24 * HOUR);
    await ctx.ledger.releaseDue(T1 + 31 * 24 * HOUR + 1);
    expect(await settledOn(ctx)).toHaveProperty('cp-1');
  });

  it('a complaint on a charge under review freezes its case: it waits past the deadline', async () => {
    ctx = testContext();
    const id = await reviewCharge('u-cr');
    await run([complaint('cmp-2', 'u-cr', id, '2026-03-10T11:00:00+08:00')]);
    expect(await ctx.cases.get(id)).toMatchObject({ frozen: true, complaint: { eventId: 'cmp-2' } });
    expect(await ctx.cases.get('cmp-2')).toBeUndefined();
    expect((await ctx.ledger.releaseDue(DEADLINE + HOUR)).caseDeadlines).toMatchObject({ autoReleased: 0 });
    expect(await settledOn(ctx)).not.toHaveProperty(id);
    expect((await caseLog('u-cr')).map((l) => l.action)).toEqual(['opened', 'complaint']);
  });

  it('a complaint on a paid charge opens a case whose cancel books a reversal: fees and credit given back', async () => {
    ctx = testContext();
    const user = 'u-cpaid';
    await run([opened(user, '2026-03-01T10:00:00+08:00', 1_000_000), { type: 'charge', eventId: 'pd-1', userId: user, merchantId: 'm-cases', cardId: 'card-pd', amount: 100_000, occurredAt: '2026-03-10T10:00:00+08:00' }]);
    const paid = await ctx.ledger.releaseDue(T1);
    expect(paid.settled).toBe(1);
    expect(await ctx.redis.hget(ctx.keys.account(user), 'owed')).toBe('100000');
    await run([complaint('cmp-3', user, 'pd-1', '2026-03-12T10:00:00+08:00')]);
    expect(await ctx.cases.get('cmp-3')).toMatchObject({ paid: true, frozen: true, status: 'open' });
    const cancelled = await ctx.cases.cancel('cmp-3', 'alice', false, 'merchant fraud', T1 + 48 * HOUR);
    expect(cancelled).toMatchObject({ cancelledFen: 100_000, creditGivenBackFen: 100_000, reversed: true });
    expect(await ctx.redis.hget(ctx.keys.account(user), 'owed')).toBe('0');
    const reversal = await ctx.ledger.releaseDue(T1 + 48 * HOUR + 1);
    // 0.60% and 0.10% of 1,000 CNY given back with it.
    expect(reversal.paid).toEqual([{ tier: 1, kind: 'reversal', count: 1, grossFen: -100_000, baseFeeFen: -600, techFeeFen: -100, netFen: -99_300 }]);
    expect((await settledOn(ctx))['cmp-3']).toBe('2026-03-13');
    // Nothing left to refund or to reverse again.
    const [refund] = await run([{ type: 'refund', eventId: 'r-pd', userId: user, chargeId: 'pd-1', amount: 1, occurredAt: '2026-03-13T10:00:00+08:00' }]);
    expect(refund).toMatchObject({ outcome: 'rejected' });
  });

  // Found by the every-order property: a complaint's case on a charge already cancelled (nothing left to pay) went to
  // pending_approval on release, waiting for a supervisor with nothing held.
  it('four eyes guard money leaving: a release with nothing left to pay closes at once', async () => {
    ctx = testContext({ cases: { fourEyesAboveFen: 5_000 } });
    const id = await reviewCharge('u-nothing', 8_000);
    await ctx.cases.cancel(id, 'alice', false, 'fraud', T1);
    await run([complaint('cmp-8', 'u-nothing', id, '2026-03-11T10:00:00+08:00')]);
    expect(await ctx.cases.release('cmp-8', 'alice', 'nothing to pay', T1 + HOUR)).toMatchObject({ status: 'closed', outcome: 'released' });
    await ctx.ledger.releaseDue(DEADLINE + 30 * 24 * HOUR);
    expect(await settledOn(ctx)).not.toHaveProperty(id);
  });

  // Found by review: a cancel weighed the charge against the refunds hash alone, which expires; a case waiting long
  // for a person then gave back again what a refund had given back.
  it('a cancel gives back only what is left, even once the refunds hash has expired', async () => {
    ctx = testContext();
    const user = 'u-left';
    const id = await reviewCharge(user, 10_000, [opened(user, '2026-03-01T10:00:00+08:00', 1_000_000)]);
    await run([{ type: 'refund', eventId: 'r-left', userId: user, chargeId: id, amount: 4_000, occurredAt: '2026-03-10T12:00:00+08:00' }]);
    expect(await ctx.cases.get(id)).toMatchObject({ refundedFen: 4_000 });
    expect(await ctx.redis.hget(ctx.keys.account(user), 'owed')).toBe('6200');
    await ctx.redis.del(ctx.keys.refunds(user));
    expect(await ctx.cases.cancel(id, 'alice', false, 'fraud', T1 + HOUR)).toMatchObject({ cancelledFen: 6_000, creditGivenBackFen: 6_000 });
    expect(await ctx.redis.hget(ctx.keys.account(user), 'owed')).toBe('200');
    expect((await caseLog(user)).map((l) => l.action)).toEqual(['opened', 'refunded', 'cancelled']);
  });

  // Found by review: a complaint after a release was asked left it waiting for approval, and the approval paid it.
  it('a complaint withdraws a release waiting for approval: the case goes back to the queue, frozen', async () => {
    ctx = testContext({ cases: { fourEyesAboveFen: 5_000 } });
    const id = await reviewCharge('u-withdrawn', 9_000);
    await ctx.cases.release(id, 'sam', 'fine', T1);
    await run([complaint('cmp-9', 'u-withdrawn', id, '2026-03-11T10:00:00+08:00')]);
    expect(await ctx.cases.get(id)).toMatchObject({ status: 'open', frozen: true });
    expect(await ctx.cases.list('pending_approval', T1, 10)).toEqual([]);
    expect((await refused(ctx.cases.approve(id, 'vera', '', T1 + HOUR))).status).toBe(409);
    expect((await caseLog('u-withdrawn')).at(-1)!.note).toMatch(/the release asked by sam is withdrawn/);
  });

  // Found by review: an analyst alone could reverse a paid charge of any size by cancelling its complaint's case.
  it('a cancel that takes back more than four eyes from the merchant needs a supervisor', async () => {
    ctx = testContext({ cases: { fourEyesAboveFen: 50_000 } });
    await run([{ type: 'charge', eventId: 'big-paid', userId: 'u-bigpaid', merchantId: 'm-cases', cardId: 'card-bp', amount: 60_000, occurredAt: '2026-03-10T10:00:00+08:00' }]);
    await ctx.ledger.releaseDue(T1);
    await run([complaint('cmp-10', 'u-bigpaid', 'big-paid', '2026-03-12T10:00:00+08:00')]);
    const denied = await refused(ctx.cases.cancel('cmp-10', 'alice', false, 'fraud', T1 + 48 * HOUR));
    expect(denied.status).toBe(403);
    expect(denied.message).toMatch(/reversal of 60000 fen .* a supervisor cancels it/);
    expect(await ctx.cases.cancel('cmp-10', 'vera', true, 'fraud, checked', T1 + 48 * HOUR)).toMatchObject({ reversed: true, cancelledFen: 60_000 });
  });

  it('refuses a complaint about an unknown, another user\'s or a declined charge, with the reason', async () => {
    ctx = testContext();
    await run([{ type: 'charge', eventId: 'dc-1', userId: 'u-dc', merchantId: 'm-cases', cardId: 'card-dc', amount: 600_000, occurredAt: '2026-03-10T23:30:00+08:00' }]);
    const replies = await run([
      complaint('cmp-4', 'u-dc', 'no-such-charge', '2026-03-11T10:00:00+08:00'),
      complaint('cmp-5', 'u-other', 'dc-1', '2026-03-11T10:00:00+08:00'),
      complaint('cmp-6', 'u-dc', 'dc-1', '2026-03-11T10:00:00+08:00'),
      { type: 'complaint', eventId: 'cmp-7', userId: 'u-dc', chargeId: 'dc-1', reason: '', occurredAt: '2026-03-11T10:00:00+08:00' },
    ]);
    expect(replies.map((r) => r.outcome)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    expect(replies[0]!.error).toMatch(/no charge no-such-charge of user u-dc/);
    expect(replies[1]!.error).toMatch(/no charge dc-1 of user u-other/);
    expect(replies[2]!.error).toMatch(/declined/);
    expect(replies[3]!.error).toMatch(/reason must not be empty/);
    expect(await ctx.cases.list('open', T1, 10)).toEqual([]);
  });

  it('a release racing the deadline run: settled once, the case closed by exactly one of them', async () => {
    for (let round = 0; round < 6; round++) {
      ctx = testContext();
      const id = await reviewCharge(`u-rd${round}`);
      const [release, run] = await Promise.allSettled([ctx.cases.release(id, 'alice', '', DEADLINE), ctx.ledger.releaseDue(DEADLINE)]);
      await ctx.ledger.releaseDue(DEADLINE + 1);
      const c = (await ctx.cases.get(id)) as CaseRecord;
      if (release.status === 'fulfilled') expect(c.outcome).toBe('released');
      else expect(c.outcome).toBe('auto_released');
      expect(run.status).toBe('fulfilled');
      expect(Object.keys(await settledOn(ctx)).filter((e) => e === id)).toHaveLength(1);
      await dropContext(ctx);
    }
    ctx = undefined as unknown as Context;
  });
});

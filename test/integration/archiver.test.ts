/**
 * The archiver on a real Redis and a fresh PostgreSQL database: every decision and dead letter archived once,
 * acknowledged only after its commit, the streams trimmed below what is archived, and a crash between the commit
 * and the acknowledgement (or before the commit) neither losing nor duplicating a row.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Archiver, ARCHIVE_GROUP } from '../../src/archive/archiver.ts';
import type { ArchiveDb } from '../../src/archive/database.ts';
import { silentLogger } from '../../src/logger.ts';
import { Metrics } from '../../src/metrics.ts';
import { parseDecision, type Decision } from '../../src/decisions/decision.ts';
import { Redis } from 'ioredis';
import { dropContext, redisUrl, testContext } from '../helpers/context.ts';
import { testCharge } from '../helpers/charges.ts';
import { testBatch } from '../helpers/batch.ts';
import { openTestArchive, skipWithoutPostgres } from '../helpers/postgres.ts';

const skip = skipWithoutPostgres();
let archive: Awaited<ReturnType<typeof openTestArchive>> | undefined;
let db: ArchiveDb;
beforeAll(async () => {
  if (skip) return;
  archive = await openTestArchive();
  db = archive.db;
});
afterAll(async () => archive?.close());

describe.skipIf(skip)('archiver', () => {
  let ctx: ReturnType<typeof testContext> | undefined;
  afterEach(async () => {
    if (ctx) await dropContext(ctx);
    ctx = undefined;
  });

  /** 60 charges over 6 users (so every shard of 4 has some), over a month edge in UTC, and 3 malformed events. */
  async function decideSome(c: ReturnType<typeof testContext>) {
    const ns = c.keys.namespace;
    const charges = Array.from({ length: 60 }, (_, i) =>
      testCharge({
        eventId: `${ns}-e${i}`,
        userId: `${ns}-u${i % 6}`,
        merchantId: `m-${i % 3}`,
        amount: 1_000 + i,
        occurredAt: new Date(Date.parse('2026-11-30T23:00:00Z') + i * 120_000).toISOString(),
      }),
    );
    const bad = [{ type: 'charge', eventId: `${ns}-bad1` }, { nonsense: true }, 'not an object'];
    await c.processor.process(testBatch([...charges, ...bad], { clockMs: Date.parse('2026-12-01T02:00:00Z') }), 'test:archiver');
    return charges;
  }

  async function drain(archiver: Archiver): Promise<number> {
    let total = 0;
    for (let n = -1; n !== 0; ) total += n = await archiver.archiveOnce();
    return total;
  }

  it('archives every decision and dead letter once, then trims the streams below what is archived', async () => {
    const c = (ctx = testContext());
    const charges = await decideSome(c);
    const metrics = new Metrics({ defaultMetrics: false });
    const archiver = new Archiver({ redis: c.redis, keys: c.keys, db, logger: silentLogger, metrics, batchSize: 7 });
    const before = await archiver.backlog();
    expect(before.find((b) => b.source === 'decisions')!.entries).toBe(60);
    const decided = new Map<string, Decision>();
    for (const charge of charges) decided.set(charge.eventId, parseDecision((await c.redis.get(c.keys.decision(c.keys.shardOf(charge.userId), charge.eventId)))!));
    expect(before.find((b) => b.source === 'dead_letters')!.entries).toBe(3);
    expect(await drain(archiver)).toBe(63);

    const rows = await db.query<{ event_id: string; amount_fen: number; outcome: string; card: string; occurred_at: Date; settle_at: Date | null; shard: number }>(
      `SELECT event_id, amount_fen, outcome, card, occurred_at, settle_at, shard FROM fenfu.transactions WHERE namespace = $1 ORDER BY event_id`,
      [c.keys.namespace],
    );
    expect(rows.rows).toHaveLength(60);
    for (const charge of charges) {
      const shard = c.keys.shardOf(charge.userId);
      const stored = decided.get(charge.eventId)!;
      // Archived: the whole decision has left Redis; the charge's record (its dedupe) stays.
      expect(await c.redis.exists(c.keys.decision(shard, charge.eventId))).toBe(0);
      expect(await c.chargeRecords.get(charge.userId, charge.eventId, stored.observed.localDate)).toMatchObject({ outcome: stored.outcome, amount: stored.amount, settleAt: stored.settleAt });
      const row = rows.rows.find((r) => r.event_id === charge.eventId)!;
      expect(row).toEqual({
        event_id: stored.eventId,
        amount_fen: stored.amount,
        outcome: stored.outcome,
        card: stored.card,
        occurred_at: new Date(stored.occurredAt),
        settle_at: stored.settleAt ? new Date(stored.settleAt) : null,
        shard,
      });
      expect(row.card).toMatch(/^\*{4}\d{4}$/);
    }
    const risks = await db.query<{ n: number; months: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT tableoid)::int AS months FROM fenfu.transactions WHERE namespace = $1`,
      [c.keys.namespace],
    );
    expect(risks.rows[0]).toEqual({ n: 60, months: 2 }); // November and December, in UTC
    const reasons = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM fenfu.risk_records WHERE namespace = $1 AND jsonb_typeof(reasons) = 'array'`, [c.keys.namespace]);
    expect(reasons.rows[0]!.n).toBe(60);
    const dead = await db.query<{ reason: string }>(`SELECT reason FROM fenfu.dead_letters WHERE namespace = $1`, [c.keys.namespace]);
    expect(dead.rows).toHaveLength(3);

    // Archived: the streams hold nothing more, the backlog is empty, and the rows were counted once.
    for (const shard of c.keys.shardIds) expect(await c.redis.xlen(c.keys.decisionStream(shard))).toBe(0);
    // The dead-letter stream keeps its entries (under its own cap) for npm run dead-letter -- list.
    expect(await c.redis.xlen(c.keys.deadLetter)).toBe(3);
    expect((await archiver.backlog()).map((b) => b.entries)).toEqual([0, 0, 0, 0]);
    expect((await metrics.archiveRows.get()).values.find((v) => v.labels.table === 'transactions')!.value).toBe(60);

    // A later stream is archived on top; the same events decided again are duplicates and add nothing.
    await c.processor.process(testBatch(charges.slice(0, 5), { clockMs: Date.parse('2026-12-01T02:00:00Z') }), 'test:again');
    expect(await drain(archiver)).toBe(0);
    expect((await db.query(`SELECT 1 FROM fenfu.transactions WHERE namespace = $1`, [c.keys.namespace])).rows).toHaveLength(60);
  });

  it('archives each settlement once, with its instant and ledger date, and trims the settlement logs', async () => {
    const c = (ctx = testContext());
    const charges = await decideSome(c);
    const archiver = new Archiver({ redis: c.redis, keys: c.keys, db, logger: silentLogger });
    // Half archived before the release, half in the same rounds as their settlements.
    await archiver.archiveOnce();
    const runAt = Date.parse('2026-12-10T19:00:00Z'); // 03:00 on 11 December in Shanghai
    const released = await c.ledger.releaseDue(runAt);
    expect(released.settled).toBeGreaterThan(0);
    await drain(archiver);
    type Row = { event_id: string; outcome: string; settled_at: Date; settlement_date: string; shard: number; merchant_id: string; amount_fen: string; kind: string; held: boolean };
    const rows = await db.query<Row & { tier: number; gross_fen: string; base_fee_fen: string; tech_fee_fen: string; net_fen: string }>(
      `SELECT t.event_id, t.outcome, t.amount_fen, s.settled_at, to_char(s.settlement_date, 'YYYY-MM-DD') AS settlement_date, s.shard,
         s.merchant_id, s.kind, s.held, s.tier, s.gross_fen, s.base_fee_fen, s.tech_fee_fen, s.net_fen
       FROM fenfu.settlements s JOIN fenfu.transactions t USING (namespace, event_id) WHERE s.namespace = $1`,
      [c.keys.namespace],
    );
    expect(rows.rows).toHaveLength(released.settled);
    for (const r of rows.rows) {
      expect(r.settled_at.getTime()).toBe(runAt);
      expect(r.settlement_date).toBe('2026-12-11');
      expect(r.outcome).not.toBe('decline');
      const charge = charges.find((ch) => ch.eventId === r.event_id)!;
      expect(r.shard).toBe(c.keys.shardOf(charge.userId));
      // What was paid, to whom, with the tier and fees (tier 1: 0.60% and 0.10%, each rounded half up).
      const gross = Number(r.amount_fen);
      const [base, tech] = [Math.floor((gross * 60 + 5_000) / 10_000), Math.floor((gross * 10 + 5_000) / 10_000)];
      expect([r.merchant_id, r.kind, r.held, r.tier]).toEqual([charge.merchantId, 'charge', r.outcome === 'review', 1]);
      expect([r.gross_fen, r.base_fee_fen, r.tech_fee_fen, r.net_fen].map(Number)).toEqual([gross, base, tech, gross - base - tech]);
    }
    for (const shard of c.keys.shardIds) expect(await c.redis.xlen(c.keys.settlementLog(shard))).toBe(0);
    // A settlement entry written again (a redelivered round) changes nothing.
    const again = await c.ledger.releaseDue(runAt);
    expect(again.settled).toBe(0);
    expect(await drain(archiver)).toBe(0);
    expect(charges).toHaveLength(60);
  });

  it("trims a stream only below what every consumer group has read and acknowledged (another reader loses nothing)", async () => {
    const c = (ctx = testContext());
    await decideSome(c);
    const shard = c.keys.shardIds.find((s) => s >= 0)!;
    const key = c.keys.decisionStream(shard);
    const all = await c.redis.xlen(key);
    expect(all).toBeGreaterThan(5);
    await c.redis.xgroup('CREATE', key, 'reader', '0');
    const read = (await c.redis.xreadgroup('GROUP', 'reader', 'r1', 'COUNT', 5, 'STREAMS', key, '>')) as [string, [string, string[]][]][];
    const archiver = new Archiver({ redis: c.redis, keys: c.keys, db, logger: silentLogger });
    expect(await drain(archiver)).toBe(63);
    // The reader holds its 5 unacknowledged: nothing of the stream went.
    expect(await c.redis.xlen(key)).toBe(all);
    await c.redis.xack(key, 'reader', ...read[0]![1].map(([id]) => id));
    const rest = (await c.redis.xreadgroup('GROUP', 'reader', 'r1', 'STREAMS', key, '>')) as [string, [string, string[]][]][];
    await c.redis.xack(key, 'reader', ...rest[0]![1].map(([id]) => id));
    // The next decision on that stream trims what both groups are done with.
    const userOfShard = Array.from({ length: 100 }, (_, i) => `${c.keys.namespace}-x${i}`).find((u) => c.keys.shardOf(u) === shard)!;
    await c.processor.process(testBatch([testCharge({ eventId: `${c.keys.namespace}-late`, userId: userOfShard, occurredAt: '2026-12-01T01:00:00Z' })], { clockMs: Date.parse('2026-12-01T02:00:00Z') }), 'test:late');
    expect(await drain(archiver)).toBe(1);
    expect(await c.redis.xlen(key)).toBe(1); // the reader has not been given the newest one yet
  });

  it('archives what PostgreSQL would refuse as it came: U+0000 in an id, 9 fraction digits at the end of a month (a bug: either stopped the archive)', async () => {
    const c = (ctx = testContext());
    const ns = c.keys.namespace;
    const odd = [
      testCharge({ eventId: `${ns}-nul`, userId: `${ns}-u\u0000x`, occurredAt: '2026-11-30T20:00:00Z' }),
      testCharge({ eventId: `${ns}-late`, userId: `${ns}-u2`, occurredAt: '2026-11-30T23:59:59.999999999Z' }),
    ];
    await c.processor.process(testBatch([...odd, 'not an object \u0000'], { clockMs: Date.parse('2026-12-01T01:00:00Z') }), 'test:odd');
    const archiver = new Archiver({ redis: c.redis, keys: c.keys, db, logger: silentLogger });
    expect(await drain(archiver)).toBe(3);
    const rows = await db.query<{ user_id: string; occurred_at: Date; p: string }>(
      `SELECT user_id, occurred_at, tableoid::regclass::text AS p FROM fenfu.transactions WHERE namespace = $1 ORDER BY event_id`,
      [ns],
    );
    expect(rows.rows).toEqual([
      { user_id: `${ns}-u2`, occurred_at: new Date('2026-11-30T23:59:59.999Z'), p: 'fenfu.transactions_2026_11' },
      { user_id: `${ns}-u\ufffdx`, occurred_at: new Date('2026-11-30T20:00:00Z'), p: 'fenfu.transactions_2026_11' },
    ]);
    expect((await db.query(`SELECT 1 FROM fenfu.dead_letters WHERE namespace = $1`, [ns])).rows).toHaveLength(1);
  });

  it('sets aside an entry PostgreSQL refuses (and one that does not parse) with its error, and archives the rest of the round', async () => {
    const c = (ctx = testContext());
    await decideSome(c);
    const key = c.keys.decisionStream(0);
    const [first] = (await c.redis.xrange(c.keys.decisionStream(c.keys.shardIds[0]!), '-', '+', 'COUNT', 1)) as [string, string[]][];
    const template = JSON.parse((first ?? (await c.redis.xrange(c.keys.decisionStream(1), '-', '+', 'COUNT', 1))[0]!)[1][1]!);
    await c.redis.xadd(key, '*', 'd', JSON.stringify({ ...template, eventId: `${c.keys.namespace}-negative`, amount: -5 }));
    await c.redis.xadd(key, '*', 'd', '{"eventId": "broken json, card 4111 1111 1111 1111"');
    const metrics = new Metrics({ defaultMetrics: false });
    const archiver = new Archiver({ redis: c.redis, keys: c.keys, db, logger: silentLogger, metrics });
    expect(await drain(archiver)).toBe(65);
    expect((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM fenfu.transactions WHERE namespace = $1`, [c.keys.namespace])).rows[0]!.n).toBe(60);
    const rejects = await db.query<{ source: string; error: string; entry: string }>(`SELECT source, error, entry FROM fenfu.archive_rejects WHERE namespace = $1 ORDER BY stream_id`, [c.keys.namespace]);
    expect(rejects.rows.map((r) => r.source)).toEqual(['decisions', 'decisions']);
    expect(rejects.rows[0]!.error).toMatch(/check constraint/);
    expect(rejects.rows[1]!.error).toMatch(/JSON/);
    expect(JSON.stringify(rejects.rows)).not.toMatch(/4111 1111 1111 1111/);
    expect((await archiver.backlog()).map((b) => b.entries)).toEqual([0, 0, 0, 0]);
    expect((await metrics.archiveQuarantined.get()).values.find((v) => v.labels.source === 'decisions')!.value).toBe(2);
  });

  it('a crash after the commit and before the acknowledgement: the next archiver writes the batch again, and nothing twice', async () => {
    const c = (ctx = testContext());
    await decideSome(c);
    // An archiver whose process dies right after its commit: the rows are in, the entries still pending.
    const dying: ArchiveDb = {
      ...db,
      atomic: async (statements) => {
        await db.atomic(statements);
        throw new Error('killed after commit');
      },
    };
    const first = new Archiver({ redis: c.redis, keys: c.keys, db: dying, logger: silentLogger, batchSize: 25 });
    await expect(first.archiveOnce()).rejects.toThrow('killed after commit');
    const pending = await Promise.all(c.keys.shardIds.map((s) => c.redis.xpending(c.keys.decisionStream(s), ARCHIVE_GROUP)));
    const pendingCount = pending.reduce((n, p) => n + Number((p as [number])[0]), 0);
    expect(pendingCount).toBeGreaterThan(0);
    const committed = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM fenfu.transactions WHERE namespace = $1`, [c.keys.namespace])).rows[0]!.n;
    expect(committed).toBe(pendingCount);

    // A crash before the commit: nothing written, nothing acknowledged.
    const refusing: ArchiveDb = { ...db, atomic: async () => Promise.reject(new Error('database down')) };
    await expect(new Archiver({ redis: c.redis, keys: c.keys, db: refusing, logger: silentLogger }).archiveOnce()).rejects.toThrow('database down');

    const next = new Archiver({ redis: c.redis, keys: c.keys, db, logger: silentLogger, batchSize: 25 });
    expect(await drain(next)).toBe(63); // the pending entries again, then the rest
    const rows = await db.query<{ n: number; distinct: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS distinct FROM fenfu.transactions WHERE namespace = $1`,
      [c.keys.namespace],
    );
    expect(rows.rows[0]).toEqual({ n: 60, distinct: 60 });
    expect((await next.backlog()).map((b) => b.entries)).toEqual([0, 0, 0, 0]);
  });

  it('counts entries a stream cap removed before any archiver read them, once, and archives the rest', async () => {
    const c = (ctx = testContext());
    const metrics = new Metrics({ defaultMetrics: false });
    const archiver = new Archiver({ redis: c.redis, keys: c.keys, db, logger: silentLogger, metrics });
    expect(await drain(archiver)).toBe(0);
    for (let i = 0; i < 5; i++) await c.deadLetters.record(c.redis, { source: `cap-test:${i}`, reason: 'bad', raw: { i } });
    // The cap at work before the archive got to them: three of the five are gone unread.
    await c.redis.xtrim(c.keys.deadLetter, 'MAXLEN', 2);
    expect(await archiver.countTrimmedUnread()).toEqual({ decisions: 0, settlements: 0, dead_letters: 3, cases: 0 });
    expect(await archiver.countTrimmedUnread()).toEqual({ decisions: 0, settlements: 0, dead_letters: 0, cases: 0 });
    expect(await drain(archiver)).toBe(2);
    const lost = (await metrics.archiveLost.get()).values.find((v) => v.labels.source === 'dead_letters');
    expect(lost?.value).toBe(3);
    const rows = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM fenfu.dead_letters WHERE namespace = $1`, [c.keys.namespace]);
    expect(rows.rows[0]!.n).toBe(2);
    // All of a stream gone unread: counted too, and the group then waits for the next entry.
    for (let i = 5; i < 9; i++) await c.deadLetters.record(c.redis, { source: `cap-test:${i}`, reason: 'bad', raw: { i } });
    await c.redis.xtrim(c.keys.deadLetter, 'MAXLEN', 0);
    expect((await archiver.countTrimmedUnread()).dead_letters).toBe(4);
    await c.deadLetters.record(c.redis, { source: 'cap-test:9', reason: 'bad', raw: { i: 9 } });
    expect(await drain(archiver)).toBe(1);
  });

  // Found by the archive crash check: an archiver killed between acknowledging a round and dropping its decisions
  // from Redis left them there for retention.decisionDays (no archiver reads an acknowledged entry again).
  it('drops the archived decisions from Redis before it acknowledges them, so a crash in between leaves none behind', async () => {
    const c = (ctx = testContext());
    const charges = await decideSome(c);
    // An archiver whose Redis user may not delete keys: it fails after the commit, at the drop.
    const user = `archiver-no-unlink-${process.pid}`;
    await c.redis.call('ACL', 'SETUSER', user, 'on', 'nopass', '~*', '&*', '+@all', '-unlink', '-del');
    const limited = new Redis(redisUrl(), { username: user, password: 'x' });
    try {
      await expect(new Archiver({ redis: limited, keys: c.keys, db, logger: silentLogger }).archiveOnce()).rejects.toThrow(/NOPERM/);
    } finally {
      limited.disconnect();
      await c.redis.call('ACL', 'DELUSER', user);
    }
    await drain(new Archiver({ redis: c.redis, keys: c.keys, db, logger: silentLogger }));
    for (const charge of charges) expect(await c.redis.exists(c.keys.decision(c.keys.shardOf(charge.userId), charge.eventId)), charge.eventId).toBe(0);
    expect((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM fenfu.transactions WHERE namespace = $1`, [c.keys.namespace])).rows[0]!.n).toBe(60);
  });
});

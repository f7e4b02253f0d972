/**
 * Retention with the clock moved forward, on a fresh PostgreSQL database fed by the real archiver: risk records and
 * dead letters go after 3 years, transaction detail (with its settlement) after 5, a disputed charge's records stay
 * while the dispute is open and 2 years after it closed; a dry run changes nothing; emptied month partitions wholly
 * past their cutoff are dropped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Archiver } from '../../src/archive/archiver.ts';
import { openArchiveDb, type ArchiveDb } from '../../src/archive/database.ts';
import { Disputes, DisputeError } from '../../src/archive/disputes.ts';
import { migrateArchive } from '../../src/archive/migrate.ts';
import { applyRetention } from '../../src/archive/retention.ts';
import { loadSettings } from '../../src/config.ts';
import { silentLogger } from '../../src/logger.ts';
import { dropContext, testContext } from '../helpers/context.ts';
import { testCharge } from '../helpers/charges.ts';
import { testBatch } from '../helpers/batch.ts';
import { createTestDatabase, skipWithoutPostgres, type TestDatabase } from '../helpers/postgres.ts';

const RETENTION = loadSettings({ env: {} }).config.archive.retention;

describe.skipIf(skipWithoutPostgres())('archive retention', () => {
  let database: TestDatabase;
  let db: ArchiveDb;
  let ctx: ReturnType<typeof testContext>;
  const count = async (table: string) => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM fenfu.${table}`)).rows[0]!.n;
  const partitions = async () =>
    (await db.query<{ name: string }>(`SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid ORDER BY 1`)).rows.map((r) => r.name);

  beforeAll(async () => {
    database = await createTestDatabase();
    db = await openArchiveDb({ databaseUrl: database.url, dataDir: '' });
    await migrateArchive(db);
    ctx = testContext();
    const ns = ctx.keys.namespace;
    // 20 charges either side of 1 December (UTC), 2 malformed events, all settled on 3 December.
    const clock = Date.parse('2026-12-01T12:00:00Z');
    const charges = Array.from({ length: 20 }, (_, i) =>
      testCharge({ eventId: `${ns}-c${i}`, userId: `${ns}-u${i % 5}`, amount: 500 + i, occurredAt: new Date(clock - 20 * 3_600_000 + i * 3_600_000).toISOString() }),
    );
    await ctx.processor.process(testBatch([...charges, { nonsense: 1 }, { type: 'charge' }], { clockMs: clock }), 'test:retention');
    await ctx.ledger.releaseDue(Date.parse('2026-12-02T19:00:00Z'));
    const archiver = new Archiver({ redis: ctx.redis, keys: ctx.keys, db, logger: silentLogger });
    for (let n = -1; n !== 0; ) n = await archiver.archiveOnce();
  });
  afterAll(async () => {
    if (ctx) await dropContext(ctx);
    await db?.close();
    await database?.drop();
  });

  it('keeps disputed records, drops the rest at 3 and 5 years, and a dry run changes nothing', async () => {
    const ns = ctx.keys.namespace;
    const disputes = new Disputes(db, ns);
    const settledBefore = await count('settlements');
    expect(await count('transactions')).toBe(20);
    expect(await count('risk_records')).toBe(20);
    expect(await count('dead_letters')).toBe(2);
    expect(settledBefore).toBeGreaterThan(10);

    await disputes.open(`${ns}-c3`, 'ops-li', 'customer says the charge was not theirs', Date.parse('2026-12-05T00:00:00Z'));
    await disputes.open(`${ns}-c4`, 'ops-li', 'duplicate charge', Date.parse('2026-12-05T00:00:00Z'));
    await disputes.close(`${ns}-c4`, 'ops-wang', Date.parse('2027-01-01T00:00:00Z'));
    await expect(disputes.open(`${ns}-c3`, 'ops-li', 'again')).rejects.toThrow(DisputeError);
    await expect(disputes.open(`${ns}-nope`, 'ops-li', 'x')).rejects.toThrow(/no archived charge/);
    // A card number typed into the reason is kept masked (disputes last years).
    await disputes.open(`${ns}-c5`, 'ops-li', 'customer says 4111 1111 1111 1111 was used');
    expect((await disputes.list(`${ns}-c5`))[0]!.reason).toBe('customer says [masked …1111] was used');
    await disputes.close(`${ns}-c5`, 'ops-li');
    await expect(disputes.close(`${ns}-c5`, 'ops-li')).rejects.toThrow(/no open dispute/);

    // A year on: nothing is due.
    const early = await applyRetention(db, RETENTION, { now: Date.now() + 365 * 86_400_000 });
    expect(early.rows).toEqual({ transactions: 0, settlements: 0, risk_records: 0, dead_letters: 0, disputes: 0, audit: 0, archive_rejects: 0, cases: 0, case_actions: 0 });

    // Risk records and dead letters are created at the wall clock's time (the charges' decidedAt, the rejections'):
    // just past 3 years after their month's end, risk records go but c3's (open dispute); c4's dispute closed
    // 2027-01-01 protects it 2 years, past already.
    const created = new Date((await db.query<{ at: Date }>(`SELECT max(created_at) AS at FROM fenfu.dead_letters`)).rows[0]!.at);
    const at3 = Date.UTC(created.getUTCFullYear() + 3, created.getUTCMonth() + 1, 5);
    const createdMonth = `${created.getUTCFullYear()}_${String(created.getUTCMonth() + 1).padStart(2, '0')}`;
    const dry = await applyRetention(db, RETENTION, { now: at3, dryRun: true });
    expect(dry.rows).toEqual({ transactions: 0, settlements: 0, risk_records: 19, dead_letters: 2, disputes: 0, audit: 0, archive_rejects: 0, cases: 0, case_actions: 0 });
    expect(dry.partitions).toEqual([`fenfu.dead_letters_${createdMonth}`]);
    expect(await count('risk_records')).toBe(20);
    expect(await count('dead_letters')).toBe(2);
    const real = await applyRetention(db, RETENTION, { now: at3 });
    expect(real.rows).toEqual(dry.rows);
    expect(real.partitions).toEqual(dry.partitions);
    expect((await db.query(`SELECT event_id FROM fenfu.risk_records`)).rows).toEqual([{ event_id: `${ns}-c3` }]);
    expect(await partitions()).not.toContain(`dead_letters_${createdMonth}`);
    expect(await partitions()).toContain(`risk_records_${createdMonth}`);

    // Past 5 years after the charges (November and December 2026): transaction detail goes, settlements with it,
    // but c3's; c4's and c5's closed disputes go too.
    const at5 = Math.max(Date.parse('2032-01-05T00:00:00Z'), at3 + 86_400_000);
    const five = await applyRetention(db, RETENTION, { now: at5 });
    const c3Settled = (await db.query(`SELECT 1 FROM fenfu.settlements WHERE event_id = $1`, [`${ns}-c3`])).rows.length;
    expect(five.rows).toEqual({ transactions: 19, settlements: settledBefore - c3Settled, risk_records: 0, dead_letters: 0, disputes: 2, audit: 0, archive_rejects: 0, cases: 0, case_actions: 0 });
    expect((await db.query(`SELECT event_id FROM fenfu.transactions`)).rows).toEqual([{ event_id: `${ns}-c3` }]);
    expect(await count('settlements')).toBe(c3Settled);
    // One of the two transaction months held only unprotected charges: emptied and dropped.
    expect(five.partitions.filter((p) => p.startsWith('fenfu.transactions_'))).toHaveLength(1);

    // The dispute closes; 2 years later everything of c3 goes, and the last partitions with it.
    const closedAt = at5 + 30 * 86_400_000;
    await disputes.close(`${ns}-c3`, 'ops-wang', closedAt);
    const end = await applyRetention(db, RETENTION, { now: closedAt + (2 * 365 + 2) * 86_400_000 });
    expect(end.rows).toEqual({ transactions: 1, settlements: c3Settled, risk_records: 1, dead_letters: 0, disputes: 0, audit: 0, archive_rejects: 0, cases: 0, case_actions: 0 });
    for (const t of ['transactions', 'settlements', 'risk_records', 'dead_letters']) expect(await count(t)).toBe(0);
    expect(await partitions()).toEqual([]);
    expect(await count('disputes')).toBe(1); // closed a month after at5: kept 5 years more
  });

  it('drops a closed case with its trail riskRecordYears after it closed; keeps an open one and a disputed charge\'s', async () => {
    const ns = ctx.keys.namespace;
    const clock = Date.parse('2026-12-01T12:00:00Z');
    // Three bursts of three charges on one card: each third charge opens a review case.
    const bursts = ['rv1', 'rv2', 'rv3'].flatMap((u) =>
      [0, 1, 2].map((i) => testCharge({ eventId: `${ns}-${u}-${i}`, userId: `${ns}-${u}`, cardId: `card-${u}`, amount: 100, occurredAt: new Date(clock + i * 60_000).toISOString() })),
    );
    await ctx.processor.process(testBatch(bursts, { clockMs: clock + 600_000 }), 'test:retention-cases');
    const closedAt = Date.parse('2026-12-02T00:00:00Z');
    await ctx.cases.release(`${ns}-rv1-2`, 'ana', 'fine', closedAt);
    await ctx.cases.cancel(`${ns}-rv2-2`, 'ana', false, 'fraud', closedAt);
    const archiver = new Archiver({ redis: ctx.redis, keys: ctx.keys, db, logger: silentLogger });
    for (let n = -1; n !== 0; ) n = await archiver.archiveOnce();
    expect(await count('cases')).toBe(3);
    await new Disputes(db, ns).open(`${ns}-rv2-2`, 'ops-li', 'customer complaint');

    const at = Date.parse('2029-12-03T00:00:00Z');
    const dry = await applyRetention(db, RETENTION, { now: at, dryRun: true });
    expect(dry.rows).toMatchObject({ cases: 1, case_actions: 2 });
    expect(await count('cases')).toBe(3);
    const real = await applyRetention(db, RETENTION, { now: at });
    expect(real.rows).toEqual(dry.rows);
    expect((await db.query(`SELECT case_id FROM fenfu.cases ORDER BY case_id`)).rows).toEqual([{ case_id: `${ns}-rv2-2` }, { case_id: `${ns}-rv3-2` }]);
    expect((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM fenfu.case_actions WHERE case_id = $1`, [`${ns}-rv1-2`])).rows[0]!.n).toBe(0);
  });

  it('counts calendar years back, 29 February to 28 February (not 1 March: a day early is a day too early)', async () => {
    const leap = await applyRetention(db, RETENTION, { now: Date.parse('2028-02-29T12:00:00Z'), dryRun: true });
    expect(leap.cutoffs).toMatchObject({ transactions: '2023-02-28T12:00:00.000Z', risk_records: '2025-02-28T12:00:00.000Z' });
    const plain = await applyRetention(db, RETENTION, { now: Date.parse('2028-03-01T00:00:00Z'), dryRun: true });
    expect(plain.cutoffs).toMatchObject({ transactions: '2023-03-01T00:00:00.000Z', risk_records: '2025-03-01T00:00:00.000Z' });
  });
});

/** npm run archive -- migrate / retention / dispute, as an operator runs them, on a fresh PostgreSQL database. */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openArchiveDb } from '../../src/archive/database.ts';
import { migrateArchive } from '../../src/archive/migrate.ts';
import { Partitions } from '../../src/archive/partitions.ts';
import { freshNamespace } from '../helpers/context.ts';
import { runTool } from '../helpers/cli.ts';
import { createTestDatabase, skipWithoutPostgres, type TestDatabase } from '../helpers/postgres.ts';

describe.skipIf(skipWithoutPostgres())('npm run archive', () => {
  let database: TestDatabase;
  const namespace = freshNamespace('cli');
  const env = () => ({ DATABASE_URL: database.url, RISKMON_NAMESPACE: namespace });
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => database?.drop());

  it('migrates, then says it is up to date; never prints the password', async () => {
    // Trust auth ignores the password: it is there to be kept out of the output.
    const withPassword = database.url.replace('postgres@', 'postgres:hunter2-archive-pw@');
    const first = await runTool('archive', ['migrate'], { ...env(), DATABASE_URL: withPassword });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:5432\/\S+: schema version 0 → 3 \(applied 1\.archive, 2\.settlement-fees, 3\.cases\)/);
    expect(first.stdout + first.stderr).not.toContain('hunter2');
    const again = await runTool('archive', ['migrate'], env());
    expect(again.stdout).toMatch(/schema version 3, up to date/);
  });

  it('opens, lists and closes a dispute on an archived charge; refuses an unknown one', async () => {
    const db = await openArchiveDb({ databaseUrl: database.url, dataDir: '' });
    try {
      await migrateArchive(db);
      const at = Date.parse('2026-12-01T10:00:00Z');
      await new Partitions(db).ensure('transactions', [at]);
      await db.query(
        `INSERT INTO fenfu.transactions (namespace, event_id, occurred_at, user_id, merchant_id, card, amount_fen, outcome, decided_at, shard)
         VALUES ($1, 'ch-1', $2, 'u1', 'm1', '****1234', 100, 'approve', $2, 0)`,
        [namespace, new Date(at)],
      );
    } finally {
      await db.close();
    }
    const open = await runTool('archive', ['dispute', 'open', 'ch-1', '--reason', 'complaint 7731', '--by', 'ops-li'], env());
    expect(open.code, open.stderr).toBe(0);
    expect(open.stdout).toMatch(/dispute opened on ch-1 .*kept until it closes \+ 2 years/);
    const list = await runTool('archive', ['dispute', 'list', '--json'], env());
    expect(JSON.parse(list.stdout)).toMatchObject([{ eventId: 'ch-1', openedBy: 'ops-li', reason: 'complaint 7731', closedAt: null }]);
    const unknown = await runTool('archive', ['dispute', 'open', 'ch-404', '--reason', 'x', '--by', 'ops-li'], env());
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no archived charge "ch-404"/);
    const noBy = await runTool('archive', ['dispute', 'close', 'ch-1'], env());
    expect(noBy.code).toBe(2);
    expect(noBy.stderr).toMatch(/--by <name> is required/);
    const close = await runTool('archive', ['dispute', 'close', 'ch-1', '--by', 'ops-wang'], env());
    expect(close.code, close.stderr).toBe(0);
    expect(close.stdout).toMatch(/dispute on ch-1 closed at/);
  });

  it('prints what retention would drop at a later instant, and production refuses a later --now without --dry-run', async () => {
    const dry = await runTool('archive', ['retention', '--dry-run', '--now', '2032-06-01T00:00:00Z', '--json'], env());
    expect(dry.code, dry.stderr).toBe(0);
    const report = JSON.parse(dry.stdout);
    expect(report).toMatchObject({ dryRun: true, now: '2032-06-01T00:00:00.000Z', cutoffs: { transactions: '2027-06-01T00:00:00.000Z', risk_records: '2029-06-01T00:00:00.000Z' } });
    // ch-1's dispute closed now: protected until 2028, not any more in 2032.
    expect(report.rows.transactions).toBe(1);
    const text = await runTool('archive', ['retention', '--dry-run', '--now', '2032-06-01T00:00:00Z'], env());
    expect(text.stdout).toMatch(/transactions +would drop 1 rows \(from before 2027-06-01T00:00:00\.000Z\)/);
    expect(text.stdout).toContain('dry run: nothing changed');
    const production = await runTool('archive', ['retention', '--now', '2032-06-01T00:00:00Z'], {
      ...env(),
      RISKMON_ENV: 'production',
      RISKMON_CARD_SECRET: randomBytes(32).toString('base64'),
      RISKMON_DASHBOARD_USER: 'ops',
      RISKMON_DASHBOARD_PASSWORD: 'a-long-and-unguessable-passphrase-9f3k',
    });
    expect(production.code).toBe(2);
    expect(production.stderr).toMatch(/production allows it only with --dry-run/);
    const misplaced = await runTool('archive', ['migrate', '--dry-run'], env());
    expect(misplaced.code).toBe(2);
  });
});

/** The archive's database on PostgreSQL and embedded (PGlite): migrations, partitions, the folder lock. */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import lockfile from 'proper-lockfile';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openArchiveDb, type ArchiveDb } from '../../src/archive/database.ts';
import { ArchiveLockedError } from '../../src/archive/errors.ts';
import { migrateArchive } from '../../src/archive/migrate.ts';
import { Partitions } from '../../src/archive/partitions.ts';
import { createTestDatabase, skipWithoutPostgres, type TestDatabase } from '../helpers/postgres.ts';

async function exerciseSchema(db: ArchiveDb): Promise<void> {
  const first = await migrateArchive(db);
  expect(first.from).toBe(0);
  expect(first.applied).toEqual(['1.archive', '2.settlement-fees', '3.cases']);
  const again = await migrateArchive(db);
  expect(again.applied).toEqual([]);
  expect(again.to).toBe(first.to);

  const partitions = new Partitions(db);
  const at = Date.parse('2026-11-30T16:30:00Z'); // 00:30 on 1 December in Shanghai: a November row in UTC
  await partitions.ensure('transactions', [at, at + 86_400_000]);
  const insert = `INSERT INTO fenfu.transactions (namespace, event_id, occurred_at, user_id, merchant_id, card, amount_fen, outcome, decided_at, shard)
    VALUES ('t', $1, $2, 'u1', 'm1', '****1234', 12345678901, 'approve', $2, 0) ON CONFLICT DO NOTHING`;
  expect((await db.query(insert, ['e-1', new Date(at)])).rowCount).toBe(1);
  expect((await db.query(insert, ['e-1', new Date(at)])).rowCount).toBe(0);
  const rows = await db.query<{ amount_fen: number; p: string }>(`SELECT amount_fen, tableoid::regclass::text AS p FROM fenfu.transactions`);
  expect(rows.rows).toEqual([{ amount_fen: 12345678901, p: 'fenfu.transactions_2026_11' }]);
  // A card number is refused by the table itself.
  await expect(db.query(insert.replace("'****1234'", "'4111111111111111'"), ['e-2', new Date(at)])).rejects.toThrow(/check/);
  // atomic: all or nothing.
  await expect(
    db.atomic([
      { text: insert, params: ['e-3', new Date(at)] },
      { text: 'SELECT 1/0' },
    ]),
  ).rejects.toThrow(/division by zero/);
  expect((await db.query(`SELECT count(*)::int AS n FROM fenfu.transactions WHERE event_id = 'e-3'`)).rows).toEqual([{ n: 0 }]);
}

describe.skipIf(skipWithoutPostgres())('archive database on PostgreSQL', () => {
  let database: TestDatabase;
  let db: ArchiveDb;
  beforeAll(async () => {
    database = await createTestDatabase();
    db = await openArchiveDb({ databaseUrl: database.url, dataDir: '' });
  });
  afterAll(async () => {
    await db?.close();
    await database?.drop();
  });

  it('migrates once, partitions by UTC month, dedupes on (namespace, eventId), refuses card numbers', async () => {
    await exerciseSchema(db);
  });

  it('refuses a migration edited after it ran (checksums)', async () => {
    await db.query(`UPDATE fenfu.schemaversion SET md5 = 'edited' WHERE version = 1`);
    await expect(migrateArchive(db)).rejects.toThrow(/checksum|md5/i);
  });

  it('names the server it cannot reach, without its password', async () => {
    await expect(openArchiveDb({ databaseUrl: 'postgres://riskmon:s3cr3t-pw@127.0.0.1:1/none', dataDir: '' })).rejects.toThrow(
      /cannot reach PostgreSQL at postgres:\/\/riskmon:\*\*\*@127\.0\.0\.1:1\/none/,
    );
  });
});

describe('embedded archive (PGlite)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'riskmon-archive-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('has the same schema and behaviour; one process owns the folder, a second opener is refused', async () => {
    const db = await openArchiveDb({ databaseUrl: undefined, dataDir: dir });
    try {
      await exerciseSchema(db);
      await expect(openArchiveDb({ databaseUrl: undefined, dataDir: dir })).rejects.toThrow(ArchiveLockedError);
    } finally {
      await db.close();
    }
    // Reopened after close: the data is there.
    const again = await openArchiveDb({ databaseUrl: undefined, dataDir: dir });
    try {
      expect((await again.query(`SELECT count(*)::int AS n FROM fenfu.transactions`)).rows).toEqual([{ n: 1 }]);
    } finally {
      await again.close();
    }
  });

  it('lets exactly one of several processes opening the folder at once have it', async () => {
    const race = mkdtempSync(join(tmpdir(), 'riskmon-archive-race-'));
    const script = join(race, 'open.mts');
    writeFileSync(
      script,
      `import { openArchiveDb } from ${JSON.stringify(new URL('../../src/archive/database.ts', import.meta.url).pathname)};
       try {
         const db = await openArchiveDb({ databaseUrl: undefined, dataDir: ${JSON.stringify(join(race, 'archive'))} });
         await db.query('SELECT 1');
         await new Promise((r) => setTimeout(r, 3000));
         await db.close();
         console.log('OPENED');
       } catch (e) {
         console.log(e.name);
       }`,
    );
    try {
      const runs = await Promise.all(
        Array.from({ length: 4 }, () => new Promise<string>((resolve) => {
          execFile(process.execPath, ['--import', import.meta.resolve('tsx'), script], { timeout: 60_000 }, (_, stdout) => resolve(stdout.trim()));
        })),
      );
      expect(runs.sort()).toEqual(['ArchiveLockedError', 'ArchiveLockedError', 'ArchiveLockedError', 'OPENED']);
    } finally {
      rmSync(race, { recursive: true, force: true });
    }
  }, 90_000);

  it('takes over a lock its owner stopped refreshing (it died), and names a live owner', async () => {
    // A lock left behind: the directory proper-lockfile makes, not refreshed for a minute.
    mkdirSync(join(dir, 'riskmon.lock'));
    const past = new Date(Date.now() - 60_000);
    utimesSync(join(dir, 'riskmon.lock'), past, past);
    const db = await openArchiveDb({ databaseUrl: undefined, dataDir: dir });
    await db.close();
    // A live owner: it holds the lock and wrote its pid beside it.
    const release = await lockfile.lock(dir, { lockfilePath: join(dir, 'riskmon.lock'), realpath: false, stale: 30_000 });
    writeFileSync(join(dir, 'riskmon.pid'), String(process.ppid));
    try {
      await expect(openArchiveDb({ databaseUrl: undefined, dataDir: dir })).rejects.toThrow(new RegExp(`open in process ${process.ppid}: one process owns`));
    } finally {
      await release();
    }
    const again = await openArchiveDb({ databaseUrl: undefined, dataDir: dir });
    await again.close();
  });
});

/**
 * The archive's schema, by postgrator: plain SQL files in src/archive/migrations (`<version>.do.<name>.sql`), each
 * applied once, in order, with its checksum recorded (`fenfu.schemaversion`) and checked on every later run, so an
 * edited migration that already ran is refused rather than silently diverging. It runs at start (the archiver,
 * the API) and by `npm run archive -- migrate`, on PostgreSQL and on the embedded database alike. Concurrent
 * starters take turns under a PostgreSQL advisory lock.
 */
import { fileURLToPath } from 'node:url';
import Postgrator from 'postgrator';
import type { ArchiveDb } from './database.ts';

const MIGRATIONS = fileURLToPath(new URL('./migrations/*.do.*.sql', import.meta.url));
/** pg_advisory_lock key of the archive's migrations: any constant no other user of the database takes. */
const MIGRATION_LOCK = 72_011_501;

export interface MigrationReport {
  /** The schema version before and after. */
  from: number;
  to: number;
  applied: string[];
}

export async function migrateArchive(db: ArchiveDb): Promise<MigrationReport> {
  return db.session(async (session) => {
    if (db.kind === 'postgres') await session.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      const database = (await session.query<{ name: string }>('SELECT current_database() AS name')).rows[0]!.name;
      const postgrator = new Postgrator({
        migrationPattern: MIGRATIONS,
        driver: 'pg',
        database,
        schemaTable: 'fenfu.schemaversion',
        execQuery: (query: string) => session.query(query),
        execSqlScript: (script: string) => session.exec(script),
      });
      const from = await postgrator.getDatabaseVersion().catch(() => 0);
      const applied = await postgrator.migrate();
      return { from: Number(from) || 0, to: Number(await postgrator.getDatabaseVersion()), applied: applied.map((m) => `${m.version}.${m.name}`) };
    } finally {
      if (db.kind === 'postgres') await session.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    }
  });
}

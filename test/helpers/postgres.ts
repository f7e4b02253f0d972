/**
 * A fresh PostgreSQL database per test file on the machine's server (127.0.0.1:5432, trust auth; `.ci/run` starts
 * it when it is down), dropped afterwards. RISKMON_TEST_POSTGRES names another server's maintenance database.
 * Without a server, the tests that need one are skipped with a message on a developer's machine and fail in CI
 * (CI=true), as the tests needing Chromium or Prometheus do.
 */
import pg from 'pg';
import { it } from 'vitest';
import { freshNamespace } from './context.ts';
import { openArchiveDb, type ArchiveDb } from '../../src/archive/database.ts';
import { migrateArchive } from '../../src/archive/migrate.ts';
import { ApiUsers, type Role } from '../../src/api/users.ts';

const ADMIN_URL = process.env.RISKMON_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(prefix = 'riskmon_test'): Promise<TestDatabase> {
  const name = freshNamespace(prefix).replace('-', '_');
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

async function reachable(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (e) {
    return (e as Error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Why there is no PostgreSQL to test against, or undefined when there is one (read once per test file). */
const unreachable = await reachable();

/**
 * Call at the top of a test file that needs PostgreSQL: true when its tests must be skipped (no server, not in CI).
 * In CI a missing server is a failing test.
 */
export function skipWithoutPostgres(): boolean {
  if (unreachable === undefined) return false;
  const message = `no PostgreSQL at ${ADMIN_URL.replace(/:[^:@/]*@/, ':***@')} (${unreachable}): install and start one (apt-get install -y postgresql), or set RISKMON_TEST_POSTGRES`;
  if (process.env.CI === 'true') {
    it('needs PostgreSQL (.ci/run starts it)', () => {
      throw new Error(message);
    });
    return true;
  }
  process.stderr.write(`SKIPPED tests that need PostgreSQL: ${message}\n`);
  it.skip(`SKIPPED: ${message}`, () => undefined);
  return true;
}

/** A fresh database with the archive's schema, open; `close` closes it and drops the database. */
export async function openTestArchive(): Promise<{ db: ArchiveDb; url: string; close(): Promise<void> }> {
  const database = await createTestDatabase();
  const db = await openArchiveDb({ databaseUrl: database.url, dataDir: '' });
  await migrateArchive(db);
  return {
    db,
    url: database.url,
    async close() {
      await db.close();
      await database.drop();
    },
  };
}

/** API users in the archive at `url`, by name and role; their tokens by name. */
export async function addTestUsers(url: string, users: Record<string, Role>): Promise<Record<string, string>> {
  const db = await openArchiveDb({ databaseUrl: url, dataDir: '' });
  try {
    await migrateArchive(db);
    const api = new ApiUsers(db);
    const tokens: Record<string, string> = {};
    for (const [name, role] of Object.entries(users)) tokens[name] = (await api.add(name, role)).token;
    return tokens;
  } finally {
    await db.close();
  }
}

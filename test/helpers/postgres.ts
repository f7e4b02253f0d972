/**
 * A fresh PostgreSQL database per test file on the machine's server (127.0.0.1:5432, trust auth; `.ci/run` starts
 * it when it is down), dropped afterwards. RISKMON_TEST_POSTGRES names another server's maintenance database.
 */
import pg from 'pg';
import { freshNamespace } from './context.ts';

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

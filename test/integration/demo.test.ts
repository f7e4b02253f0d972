/**
 * `npm run demo`, the README's first command: decides a synthetic feed, prints each decision, and archives every
 * one, into the embedded database by default and into PostgreSQL with DATABASE_URL; `archive -- status` then
 * reads the archive.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { redisUrl } from '../helpers/context.ts';
import { runTool } from '../helpers/cli.ts';
import { createTestDatabase, skipWithoutPostgres } from '../helpers/postgres.ts';

const skipPostgres = skipWithoutPostgres();

describe('npm run demo', () => {
  const dir = mkdtempSync(join(tmpdir(), 'riskmon-demo-'));
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify({ archive: { dataDir: join(dir, 'archive') } }));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('archives every decision it prints into the embedded database, which archive -- status reads afterwards', async () => {
    const env = { REDIS_URL: redisUrl(), RISKMON_CONFIG: configFile };
    const demo = await runTool('demo', ['--count', '60', '--rate', '600'], env);
    expect(demo.code, demo.stderr).toBe(0);
    expect(demo.stdout).toMatch(/^60 decisions/m);
    const namespace = /into namespace (\S+)/.exec(demo.stdout)![1]!;
    expect(demo.stdout).toContain(`Archived 60 decisions into embedded PostgreSQL (PGlite) in ${join(dir, 'archive')}`);
    const status = await runTool('archive', ['status', '--namespace', namespace, '--json'], env);
    expect(status.code, status.stderr).toBe(0);
    const s = JSON.parse(status.stdout) as { rows: Record<string, number>; backlog: { entries: number }[] };
    expect(s.rows).toMatchObject({ transactions: 60, risk_records: 60, dead_letters: 0 });
    expect(s.backlog.map((b) => b.entries)).toEqual([0, 0, 0, 0]);
  }, 120_000);

  it.skipIf(skipPostgres)('archives into PostgreSQL with DATABASE_URL', async () => {
    const database = await createTestDatabase();
    try {
      const demo = await runTool('demo', ['--count', '40', '--rate', '600'], { REDIS_URL: redisUrl(), RISKMON_CONFIG: configFile, DATABASE_URL: database.url });
      expect(demo.code, demo.stderr).toBe(0);
      const namespace = /into namespace (\S+)/.exec(demo.stdout)![1]!;
      expect(demo.stdout).toMatch(/Archived 40 decisions into postgres:\/\//);
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      try {
        const rows = await client.query(`SELECT count(*)::int AS n FROM fenfu.transactions WHERE namespace = $1`, [namespace]);
        expect(rows.rows[0].n).toBe(40);
      } finally {
        await client.end();
      }
    } finally {
      await database.drop();
    }
  }, 120_000);
});

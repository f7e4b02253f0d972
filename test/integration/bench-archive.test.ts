/** npm run bench:archive at a tiny size: it archives everything it decided, into PostgreSQL and PGlite, and reports both. */
import { describe, expect, it } from 'vitest';
import { runTool } from '../helpers/cli.ts';
import { skipWithoutPostgres } from '../helpers/postgres.ts';

describe.skipIf(skipWithoutPostgres())('bench:archive', () => {
  it('measures the archiver into both databases and the Redis memory per decision', async () => {
    const r = await runTool('bench-archive', ['--count', '400', '--users', '50', '--batch', '100', '--embedded'], { DATABASE_URL: process.env.RISKMON_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\| PostgreSQL \| 100 \| [\d,]+ \|/);
    expect(r.stdout).toMatch(/\| PGlite \(embedded\) \| 100 \| [\d,]+ \|/);
    const m = /Redis key memory per decision \(.*?\): (\d+) B before archiving, (\d+) B after .*?, (\d+) B once every charge is more than a day old/.exec(r.stdout)!;
    expect(Number(m[2])).toBeLessThan(Number(m[1]));
    // At 400 charges the shards' fixed keys (ledgers, logs, their groups) outweigh the charges: no ratio here.
    expect(Number(m[3])).toBeGreaterThan(0);
    expect(r.stdout).toMatch(/\| charge records \| \d+ \| \d+ \| 400 \|/);
    expect(r.stdout).toMatch(/\| eventId claims \| \d+ \| \d+ \| 400 \|/);
  }, 120_000);
});

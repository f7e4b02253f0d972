import { expect, test } from 'vitest';
import { redisUrl } from '../helpers/context.ts';
import { archiveCrashScenario } from './archive-crash.ts';
import { program } from '../helpers/binaries.ts';

const initdb = program('/usr/lib/postgresql/15/bin/initdb', 'postgresql');

test.skipIf(initdb.skip)('kill -9 of the archiver and a PostgreSQL crash mid-stream: one row per decision, none missing, none twice', async () => {
  const f = await archiveCrashScenario({ redisUrl: redisUrl(), events: 4_000, users: 300, rate: 1_500, killEveryMs: 600 });
  console.log(`archive crash: ${JSON.stringify(f)}`);
  expect(f.decided).toBe(f.events);
  expect(f.rows).toBe(f.decided);
  expect(f.distinctRows).toBe(f.rows);
  expect(f.missing).toBe(0);
  expect(f.different).toBe(0);
  expect(f.leftInRedis).toBe(0);
  // The test must have bitten: archivers died holding read entries, and PostgreSQL went down mid-stream.
  expect(f.archiverKills).toBeGreaterThan(0);
  expect(f.postgresCrashes).toBeGreaterThan(0);
  expect(f.pendingRewrites).toBeGreaterThan(0);
}, 180_000);

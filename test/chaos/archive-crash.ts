/**
 * The archive exactly once under crashes: a synthetic stream flows through real risk-worker processes into a
 * private PostgreSQL server through real archiver processes, while the archivers are killed with SIGKILL and
 * replaced, and PostgreSQL itself crashes (`pg_ctl stop -m immediate`) and comes back, mid-stream. Afterwards the
 * archive holds one row per decided event, none missing, none twice, each equal to the decision Redis holds, and
 * the streams hold nothing the archive lacks.
 */
import pg from 'pg';
import { archiveBacklog, PENDING_AGAIN } from '../../src/archive/archiver.ts';
import { openArchiveDb } from '../../src/archive/database.ts';
import { migrateArchive } from '../../src/archive/migrate.ts';
import { createContext } from '../../src/context.ts';
import { syntheticCharges } from '../../src/events/synthetic.ts';
import { silentLogger } from '../../src/logger.ts';
import { targetEnv } from '../../src/redis/target.ts';
import { freshNamespace } from '../helpers/context.ts';
import { startPrivatePostgres } from '../helpers/pg-server.ts';
import { CRASH_PIPELINE } from './worker-crash.ts';
import { chaosSettings, dropNamespace, Fleet, paced, sleep, unfinishedJobs, waitFor, writeConfigFile } from './harness.ts';

export interface ArchiveCrashOptions {
  redisUrl: string;
  events: number;
  users: number;
  rate: number;
  killEveryMs: number;
}

export interface ArchiveCrashFigures {
  events: number;
  decided: number;
  rows: number;
  distinctRows: number;
  missing: number;
  different: number;
  /** Decided charges whose whole decision is still in Redis after the archive caught up (it should have left). */
  leftInRedis: number;
  archiverKills: number;
  postgresCrashes: number;
  /** Entries archivers wrote again after a predecessor (or a failed round) had read them and not acknowledged them. */
  pendingRewrites: number;
  seconds: number;
}

export async function archiveCrashScenario(options: ArchiveCrashOptions): Promise<ArchiveCrashFigures> {
  const started = performance.now();
  const postgres = await startPrivatePostgres();
  const namespace = freshNamespace('chaos-archive');
  const databaseUrl = await postgres.createDatabase(namespace.replaceAll('-', '_'));
  const overrides = { pipeline: CRASH_PIPELINE, archive: { enabled: true, batchSize: 40, pollMs: 20 } };
  const settings = chaosSettings(namespace, overrides);
  const configFile = writeConfigFile(overrides);
  const context = createContext(settings, options.redisUrl, silentLogger);
  const fleet = new Fleet({ ...targetEnv(options.redisUrl), RISKMON_NAMESPACE: namespace, RISKMON_CONFIG: configFile.path, DATABASE_URL: databaseUrl });
  const producer = await context.openProducer({ clock: 'replay' });
  const input = [...syntheticCharges({ count: options.events, users: options.users, seed: 11, startMs: Date.now() - 3 * 86_400_000, prefix: namespace })];
  const client = new pg.Client({ connectionString: databaseUrl });
  const backlog = async () => (await archiveBacklog(context.redis, context.keys)).reduce((n, b) => n + b.entries, 0);
  let postgresCrashes = 0;
  try {
    // Each write of the archive takes 30 ms more (a statement trigger that sleeps), so the archiver spends most of
    // its time inside rounds: a kill or a crash then lands on entries read and not yet acknowledged, as it must for
    // the test to prove anything. The schema is migrated here first, as the archiver would.
    const setup = await openArchiveDb({ databaseUrl, dataDir: '' });
    try {
      await migrateArchive(setup);
      await setup.exec(`CREATE FUNCTION fenfu.slow_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.03); RETURN NULL; END $$;
        CREATE TRIGGER slow_write AFTER INSERT ON fenfu.transactions FOR EACH STATEMENT EXECUTE FUNCTION fenfu.slow_write();`);
    } finally {
      await setup.close();
    }
    fleet.start('risk-worker', 2);
    fleet.start('archiver');
    await Promise.all(fleet.processes().map((p) => p.waitForLine('riskmon started')));
    let producing = true;
    const chaos = (async () => {
      // While there is work to lose (an archiver with nothing read proves nothing), at most 12 blows; then the last
      // archiver is left to finish.
      for (let k = 1; k <= 12; k++) {
        const until = Date.now() + 10_000;
        while ((await backlog()) < 50 && (producing || Date.now() < until)) await sleep(10);
        if ((await backlog()) < 50) break;
        if (k % 3 === 2 && postgresCrashes < 2) {
          postgres.crash();
          postgresCrashes++;
          await sleep(400);
          postgres.start();
        } else {
          fleet.killAllAndRestart('archiver');
        }
        await sleep(options.killEveryMs);
      }
    })();
    await paced(producer, input, options.rate);
    producing = false;
    await chaos;
    await waitFor(async () => (await unfinishedJobs(context.redis, context.keys, settings.config.pipeline.shards)) === 0, 120_000, 'the risk queues to drain', 250);
    await waitFor(async () => (await backlog()) === 0, 120_000, 'the archive to catch up', 250).catch(async (e: Error) => {
      // What the archivers said last, and what is left: the reason a run does not catch up.
      const tails = fleet.processes().map((p) => p.lines.filter((l) => l.includes('archive')).slice(-15).join('\n'));
      throw new Error(`${e.message}; backlog ${JSON.stringify(await archiveBacklog(context.redis, context.keys))}\n${tails.join('\n---\n')}`);
    });
    const crashed = fleet.unexpectedExits();
    if (crashed.length) throw new Error(`processes died on their own:\n${crashed.join('\n')}`);

    await client.connect();
    const rows = await client.query<{ event_id: string; outcome: string; amount_fen: string; settle_at: Date | null; rules: string[] }>(
      `SELECT t.event_id, t.outcome, t.amount_fen, t.settle_at, r.rules
       FROM fenfu.transactions t JOIN fenfu.risk_records r USING (namespace, event_id) WHERE t.namespace = $1`,
      [namespace],
    );
    const byId = new Map(rows.rows.map((r) => [r.event_id, r]));
    let decided = 0;
    let missing = 0;
    let different = 0;
    let leftInRedis = 0;
    for (const e of input) {
      // What Redis keeps of a decided charge once archived: its record (the whole decision went to PostgreSQL).
      const d = await context.chargeRecords.get(e.userId, e.eventId, context.calendar.local(Date.parse(e.occurredAt)).date);
      if (!d) continue;
      decided++;
      if ((await context.redis.exists(context.keys.decision(context.keys.shardOf(e.userId), e.eventId))) === 1) leftInRedis++;
      const row = byId.get(e.eventId);
      if (!row) missing++;
      else if (row.outcome !== d.outcome || Number(row.amount_fen) !== d.amount || (row.settle_at?.toISOString() ?? null) !== d.settleAt || JSON.stringify(row.rules) !== JSON.stringify(d.rules)) different++;
    }
    return {
      events: input.length,
      decided,
      rows: rows.rows.length,
      distinctRows: byId.size,
      missing,
      different,
      leftInRedis,
      archiverKills: fleet.kills,
      postgresCrashes,
      pendingRewrites: fleet.count(PENDING_AGAIN),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await client.end().catch(() => {});
    await producer.close();
    await fleet.stop();
    await dropNamespace(context.redis, context.keys);
    await context.close();
    configFile.remove();
    await postgres.stop();
  }
}

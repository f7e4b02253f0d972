/**
 * The long-running service: risk workers and/or the settlement worker for one namespace, with signal handling
 * and a bounded graceful shutdown. Entry points in workers/ choose the components.
 */
import { loadSettings, type Settings } from './config.ts';
import { createContext, type Context } from './context.ts';
import { createLogger, type Logger } from './logger.ts';
import { assertNoEviction, assertReachable } from './redis/connection.ts';
import { resolveRedis, type LocalRedis } from './redis/local-server.ts';
import { startRiskWorkers } from './pipeline/risk-workers.ts';
import { checkLayout } from './redis/layout.ts';
import { startSettlementWorker } from './settlement/settlement-worker.ts';
import { startDailyReconciliation } from './settlement/reconciliation.ts';
import { startCalibrationWorker } from './quota/calibration-worker.ts';
import type { Worker } from 'bullmq';
import { startObservability } from './http/observability.ts';
import type { HttpServer } from './http/server.ts';
import { Archiver, watchBacklog } from './archive/archiver.ts';
import { ArchiveLockedError, openArchiveDb, type ArchiveDb } from './archive/database.ts';
import { migrateArchive } from './archive/migrate.ts';
import { applyRetention } from './archive/retention.ts';

export type Component = 'risk' | 'settlement' | 'calibration' | 'archive';

export interface Service {
  context: Context;
  /** A Redis server this process started itself (no REDIS_URL and nothing on 6379), if any. */
  localRedis?: LocalRedis;
  /** The /metrics, /healthz, /readyz and /admin/queues server, when started. */
  http?: HttpServer;
  /** The archive's database, when this process archives (the `archive` component with archive.enabled). */
  archive?: ArchiveDb;
  /** Every BullMQ worker of this process (readiness watches them). */
  workers: Worker[];
  /**
   * Stops within `graceMs` (default: the configured pipeline.shutdownGraceMs) whatever state Redis is in: the
   * workers stop taking jobs and finish (or hand back) their in-flight ones, then the connections close. What could
   * not stop in time is abandoned, logged and reported; abandoned jobs are redelivered once their locks expire.
   */
  close(graceMs?: number): Promise<ShutdownReport>;
}

export interface ShutdownReport {
  /** Everything stopped on its own within the grace period. */
  clean: boolean;
  /** What was given up at the deadline: worker queues, "Redis connections". */
  abandoned: string[];
}

/**
 * The part of the grace period kept for closing the connections after the workers (at most a quarter of it): the
 * workers must be done by grace − reserve, the connections by grace − reserve/2.
 */
const CONNECTIONS_RESERVE_MS = 2_000;

/** Deadlines (epoch ms) for a shutdown starting now with `graceMs`. */
function shutdownDeadlines(graceMs: number, now = Date.now()): { workers: number; connections: number } {
  const reserve = Math.min(CONNECTIONS_RESERVE_MS, Math.floor(graceMs / 4));
  return { workers: now + graceMs - reserve, connections: now + graceMs - Math.floor(reserve / 2) };
}

export interface StartOptions {
  components: Component[];
  settings?: Settings;
  logger?: Logger;
  /** Use this Redis URL instead of resolving one. */
  redisUrl?: string;
  /** Serve HTTP (metrics, health, queue dashboard) per `config.http`. @defaultValue false */
  http?: boolean;
}

export async function startService(options: StartOptions): Promise<Service> {
  const settings = options.settings ?? loadSettings();
  const logger = options.logger ?? createLogger();
  const resolved = options.redisUrl ? { target: options.redisUrl } : await resolveRedis(settings);
  const localRedis = 'started' in resolved ? resolved.started : undefined;
  if (localRedis) logger.warn({ url: localRedis.url }, 'no Redis on 127.0.0.1:6379 and REDIS_URL unset: started a private redis-server (data is temporary)');
  const context = createContext(settings, resolved.target, logger);
  try {
    await assertReachable(context.redis, resolved.target);
    await assertNoEviction(context.redis, resolved.target);
    await checkLayout(context.redis, context.keys, { record: false });
  } catch (e) {
    // disconnect, not quit: quit would wait for a Redis that may not answer.
    context.redis.disconnect();
    context.queueConnection.disconnect();
    await localRedis?.stop();
    throw e;
  }

  // Each closer stops by the deadline it is given (epoch ms) and resolves what it abandoned.
  const closers: ((deadline: number) => Promise<string[]>)[] = [];
  const workers: Worker[] = [];
  let phase: 'starting' | 'running' | 'shutting down' = 'starting';
  let http: HttpServer | undefined;
  // Set once the archive is open (in the background): the API and the service's `archive` read it.
  let archiveDb: ArchiveDb | undefined;
  // HTTP first: a taken port or a missing login stops start-up before any worker has touched a queue.
  if (options.http) {
    const serveApi = options.components.includes('archive') && settings.config.archive.enabled;
    http = await startObservability(context, workers, () => (phase === 'running' ? undefined : phase), logger, closers, serveApi ? () => archiveDb : undefined).catch(async (e) => {
      await context.close();
      await localRedis?.stop();
      throw e;
    });
  }
  // Recorded once every start-up guard has passed (a refused start writes nothing).
  await checkLayout(context.redis, context.keys);
  // A worker the watchdog replaces takes the old one's place in the list readiness reads.
  const onReplaced = (old: Worker, fresh: Worker) => {
    const i = workers.indexOf(old);
    if (i >= 0) workers[i] = fresh;
  };
  if (options.components.includes('risk')) {
    // The shards' copies of the lists equal the lists before the first charge is decided (a list change cut short
    // between the list and its copies is finished here).
    const copied = await context.lists.sync();
    if (copied > 0) logger.warn({ copied }, "lists: shards' copies were behind the lists, and were brought up to date");
    const risk = await startRiskWorkers({
      connection: context.queueConnection,
      keys: context.keys,
      pipeline: settings.config.pipeline,
      processor: context.processor,
      logger: logger.child({ component: 'risk-worker' }),
      metrics: context.metrics,
      cards: context.cards,
      onReplaced,
    });
    closers.push(risk.close);
    workers.push(...risk.workers);
  }
  if (options.components.includes('settlement')) {
    const settlement = await startSettlementWorker({
      connection: context.queueConnection,
      keys: context.keys,
      settlement: settings.config.settlement,
      ledger: context.ledger,
      logger: logger.child({ component: 'settlement' }),
      metrics: context.metrics,
      watchdogSeconds: settings.config.pipeline.watchdogSeconds,
      onReplaced,
    });
    closers.push(settlement.close);
    workers.push(settlement.worker);
  }
  if (options.components.includes('calibration')) {
    const calibration = await startCalibrationWorker({
      connection: context.queueConnection,
      keys: context.keys,
      config: settings.config,
      calibrator: context.calibrator,
      calibration: context.calibration,
      logger: logger.child({ component: 'calibration' }),
      metrics: context.metrics,
      watchdog: true,
      onReplaced,
    });
    closers.push(calibration.close);
    workers.push(calibration.worker);
  }
  const service: Service = {
    context,
    localRedis,
    http,
    workers,
    close: async () => ({ clean: true, abandoned: [] }),
  };
  if (options.components.includes('archive') && settings.config.archive.enabled) {
    startArchiver(context, settings, logger, closers, (db) => (service.archive = archiveDb = db));
  }
  if (options.components.includes('settlement') && !settings.config.archive.enabled) {
    // Nothing archives closed review cases, so nothing drops them from Redis: the settlement process keeps them as
    // long as decisions (retention.decisionDays), then lets them go.
    const keepMs = settings.config.retention.decisionDays * 86_400_000;
    const drop = () => void context.cases.dropClosed(Date.now() - keepMs).catch((e: Error) => logger.warn({ err: e.message }, 'cases: could not drop old closed cases'));
    const timer = setInterval(drop, 3_600_000);
    timer.unref();
    drop();
    closers.push(async () => {
      clearInterval(timer);
      return [];
    });
  }
  phase = 'running';
  logger.info(
    { namespace: settings.config.namespace, components: options.components, configVersion: settings.configVersion, shards: settings.config.pipeline.shards },
    'riskmon started',
  );

  service.close = async (graceMs = settings.config.pipeline.shutdownGraceMs) => {
    phase = 'shutting down';
    const deadlines = shutdownDeadlines(graceMs);
    const abandoned = (await Promise.all(closers.map((c) => c(deadlines.workers)))).flat();
    if (!(await context.close(deadlines.connections))) abandoned.push('Redis connections');
    await localRedis?.stop();
    return { clean: abandoned.length === 0, abandoned };
  };
  return service;
}

/**
 * Opens the archive (migrating it to this version's schema) and runs the archiver and the daily reconciliation
 * (src/settlement/reconciliation.ts), in the background: decisions
 * never wait for PostgreSQL, and a database that is down at start is tried again every few seconds (the entries
 * wait in their streams meanwhile). An embedded archive that another process owns is left to it: that process
 * archives every shard, so this one runs without (warned).
 */
function startArchiver(context: Context, settings: Settings, logger: Logger, closers: ((deadline: number) => Promise<string[]>)[], onOpen: (db: ArchiveDb) => void): void {
  const log = logger.child({ component: 'archive' });
  const stopWatching = watchBacklog(context.redis, context.keys, context.metrics);
  let stopping = false;
  let archiver: Archiver | undefined;
  let db: ArchiveDb | undefined;
  let wake: (() => void) | undefined;
  let retentionTimer: NodeJS.Timeout | undefined;
  let daily: ReturnType<typeof startDailyReconciliation> | undefined;
  const opening = (async () => {
    for (let attempt = 1; !stopping; attempt++) {
      try {
        db = await openArchiveDb({ databaseUrl: settings.databaseUrl, dataDir: settings.config.archive.dataDir });
        const migration = await migrateArchive(db);
        if (migration.applied.length > 0) log.info(migration, 'archive: schema migrated');
        break;
      } catch (e) {
        await db?.close().catch(() => {});
        db = undefined;
        if (e instanceof ArchiveLockedError) {
          log.warn({ err: e.message }, 'archive: not archiving in this process');
          stopWatching();
          return;
        }
        if (attempt === 1 || attempt % 12 === 0) log.error({ err: (e as Error).message, attempt }, 'archive: cannot open the archive; trying again every 5 s');
        context.metrics.archiveErrors.inc();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 5_000);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
    if (stopping) {
      // Stopped while it was opening: nothing else will close it.
      await db?.close().catch(() => {});
      db = undefined;
      return;
    }
    if (!db) return;
    archiver = new Archiver({
      redis: context.redis,
      keys: context.keys,
      db,
      logger: log,
      metrics: context.metrics,
      batchSize: settings.config.archive.batchSize,
      pollMs: settings.config.archive.pollMs,
    });
    archiver.start();
    onOpen(db);
    const running = archiver;
    daily = startDailyReconciliation({
      ledger: context.ledger,
      db,
      namespace: settings.config.namespace,
      archiveSettlements: () => running.catchUp('settlements'),
      calendar: context.calendar,
      secondOfDay: settings.config.settlement.reconciliation.time,
      dir: settings.config.settlement.reconciliation.dir,
      logger: logger.child({ component: 'reconciliation' }),
      metrics: context.metrics,
    });
    log.info({ database: db.description }, 'archive: archiving decisions, settlements and dead letters');
    // Retention at start and then every everyHours: what is past it is dropped (src/archive/retention.ts).
    const retention = settings.config.archive.retention;
    const runRetention = async () => {
      if (stopping || !db) return;
      try {
        const report = await applyRetention(db, retention);
        const dropped = Object.values(report.rows).reduce((a, b) => a + b, 0);
        if (dropped > 0 || report.partitions.length > 0) log.info(report, 'archive: retention dropped what is past it');
      } catch (e) {
        log.error({ err: (e as Error).message }, 'archive: the retention run failed; it runs again at the next interval');
      }
    };
    void runRetention();
    retentionTimer = setInterval(() => void runRetention(), retention.everyHours * 3_600_000).unref();
  })();
  closers.push(async (deadline) => {
    stopping = true;
    wake?.();
    stopWatching();
    clearInterval(retentionTimer);
    const stopped = await Promise.race([
      opening.then(() => daily?.stop()).then(() => archiver?.stop()).then(() => true),
      sleepUntil(deadline).then(() => false),
    ]);
    await db?.close().catch(() => {});
    return stopped ? [] : ['archiver'];
  });
}

function sleepUntil(deadline: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())).unref());
}

const TOO_LONG = 'shutdown took too long; exiting (unfinished batches will be redelivered)';

/**
 * Runs until SIGINT/SIGTERM; in-flight batches finish or go back to their queue within `graceMs` (default: the
 * configured pipeline.shutdownGraceMs); past it the process exits anyway and its batches are redelivered.
 */
export async function runUntilSignal(options: StartOptions, graceMs?: number): Promise<void> {
  const logger = options.logger ?? createLogger();
  const fail = (e: unknown): never => {
    logger.fatal({ err: (e as Error).message }, 'riskmon failed to start');
    process.stderr.write(`riskmon: ${(e as Error).message}\n`);
    process.exit(1);
  };
  let settings: Settings;
  try {
    settings = options.settings ?? loadSettings();
  } catch (e) {
    return fail(e);
  }
  const grace = graceMs ?? settings.config.pipeline.shutdownGraceMs;
  const starting = startService({ ...options, settings, logger, http: options.http ?? settings.config.http.enabled });
  // Handlers go in before the workers start: a signal during start-up must not kill batches mid-flight.
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, graceMs: grace }, 'shutting down');
    const timer = setTimeout(() => {
      // A backstop: close() itself gives up on what has not stopped before the grace period is over.
      logger.error({ graceMs: grace }, TOO_LONG);
      process.exit(1);
    }, grace);
    timer.unref();
    starting
      .then((service) => service.close(grace))
      .then(
        (report) => {
          if (!report.clean) {
            logger.error({ graceMs: grace, abandoned: report.abandoned }, TOO_LONG);
            process.exit(1);
          }
          logger.info({ signal }, 'shut down cleanly');
          process.exit(0);
        },
        (e) => {
          logger.error({ err: (e as Error).message }, 'error during shutdown');
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  await starting.catch(fail);
}

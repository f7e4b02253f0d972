/**
 * The long-running service: risk workers and/or the settlement worker for one namespace, with signal handling
 * and a bounded graceful shutdown. Entry points in workers/ choose the components.
 */
import { loadSettings, type Settings } from './config.ts';
import { createContext, type Context } from './context.ts';
import { createLogger, type Logger } from './logger.ts';
import { assertNoEviction, assertReachable } from './redis/connection.ts';
import { resolveRedisUrl, type LocalRedis } from './redis/local-server.ts';
import { startRiskWorkers } from './pipeline/risk-workers.ts';
import { startSettlementWorker } from './settlement/settlement-worker.ts';
import { startCalibrationWorker } from './quota/calibration-worker.ts';
import type { Worker } from 'bullmq';
import { startObservability } from './http/observability.ts';
import type { HttpServer } from './http/server.ts';

export type Component = 'risk' | 'settlement' | 'calibration';

export interface Service {
  context: Context;
  /** A Redis server this process started itself (no REDIS_URL and nothing on 6379), if any. */
  localRedis?: LocalRedis;
  /** The /metrics, /healthz, /readyz and /admin/queues server, when started. */
  http?: HttpServer;
  /** Every BullMQ worker of this process (readiness watches them). */
  workers: Worker[];
  close(): Promise<void>;
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
  const resolved = options.redisUrl ? { url: options.redisUrl } : await resolveRedisUrl(settings.redisUrl);
  const localRedis = 'started' in resolved ? resolved.started : undefined;
  if (localRedis) logger.warn({ url: localRedis.url }, 'no Redis on 127.0.0.1:6379 and REDIS_URL unset: started a private redis-server (data is temporary)');
  const context = createContext(settings, resolved.url, logger);
  try {
    await assertReachable(context.redis, resolved.url);
    await assertNoEviction(context.redis, resolved.url);
  } catch (e) {
    // disconnect, not quit: quit would wait for a Redis that may not answer.
    context.redis.disconnect();
    context.queueConnection.disconnect();
    await localRedis?.stop();
    throw e;
  }

  const closers: (() => Promise<void>)[] = [];
  const workers: Worker[] = [];
  let phase: 'starting' | 'running' | 'shutting down' = 'starting';
  let http: HttpServer | undefined;
  // HTTP first: a taken port or a missing login stops start-up before any worker has touched a queue.
  if (options.http) {
    http = await startObservability(context, workers, () => (phase === 'running' ? undefined : phase), logger, closers).catch(async (e) => {
      await context.close();
      await localRedis?.stop();
      throw e;
    });
  }
  if (options.components.includes('risk')) {
    const risk = await startRiskWorkers({
      connection: context.queueConnection,
      keys: context.keys,
      pipeline: settings.config.pipeline,
      processor: context.processor,
      logger: logger.child({ component: 'risk-worker' }),
      metrics: context.metrics,
      cards: context.cards,
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
    });
    closers.push(calibration.close);
    workers.push(calibration.worker);
  }
  phase = 'running';
  logger.info(
    { namespace: settings.config.namespace, components: options.components, configVersion: settings.configVersion, shards: settings.config.pipeline.shards },
    'riskmon started',
  );

  return {
    context,
    localRedis,
    http,
    workers,
    async close() {
      phase = 'shutting down';
      await Promise.all(closers.map((c) => c()));
      await context.close();
      await localRedis?.stop();
    },
  };
}

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
      logger.error({ graceMs: grace }, 'shutdown took too long; exiting (unfinished batches will be redelivered)');
      process.exit(1);
    }, grace);
    timer.unref();
    starting
      .then((service) => service.close())
      .then(
        () => {
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

/**
 * What a service process shows to operators: scrape-time metrics over the namespace's queues and Redis, and the
 * HTTP server (/metrics, /healthz, /readyz, /admin/queues).
 */
import { readFileSync } from 'node:fs';
import { Queue, type Worker } from 'bullmq';
import type { Context } from '../context.ts';
import type { Logger } from '../logger.ts';
import { CALIBRATION_QUEUE, riskQueueName, SETTLEMENT_QUEUE } from '../redis/keys.ts';
import { settlesBy } from '../redis/shutdown.ts';
import { checkReadiness } from './readiness.ts';
import { startHttpServer, type HttpServer } from './server.ts';
import type { ArchiveDb } from '../archive/database.ts';

/** The riskmon version (package.json), for `riskmon_build_info`. */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/**
 * Starts both; the queues it opens are closed (through `closers`) after the server stops, so a last scrape never
 * meets a closed queue.
 */
export async function startObservability(
  context: Context,
  workers: Worker[],
  /** Why the process is not ready regardless of its checks ("starting", "shutting down"), if so. */
  phase: () => string | undefined,
  logger: Logger,
  /** Given a deadline (epoch ms), each closes by it and resolves what it abandoned. */
  closers: ((deadline: number) => Promise<string[]>)[],
  /** The archive once open, for /api (absent: no API in this process). */
  archive?: () => ArchiveDb | undefined,
): Promise<HttpServer> {
  const { settings, keys } = context;
  const { config } = settings;
  const names = [...Array.from({ length: config.pipeline.shards }, (_, shard) => riskQueueName(shard)), SETTLEMENT_QUEUE, CALIBRATION_QUEUE];
  const queues = names.map((name) => new Queue(name, { connection: context.queueConnection, prefix: keys.queuePrefix(name) }));
  // A queue re-emits every error of its connection, and with no listener BullMQ prints each one to stderr (every
  // reconnect attempt while Redis is away). The connection logs an outage once itself (createRedis); failed calls
  // reach the scrape or dashboard request that made them.
  for (const queue of queues) queue.on('error', () => undefined);
  context.metrics.observe({
    queues,
    redis: context.redis,
    keys,
    settlementStats: () => context.ledger.stats(),
    caseCounts: (nowMs) => context.cases.counts(nowMs),
    build: { version: VERSION, configVersion: settings.configVersion },
  });
  const closeQueues = () => Promise.all(queues.map((q) => q.close())).then(() => undefined);
  let server: HttpServer;
  try {
    server = await startHttpServer({
      http: config.http,
      credentials: settings.dashboardCredentials,
      environment: config.environment,
      timezone: config.timezone,
      namespace: config.namespace,
      metrics: context.metrics,
      queues,
      readiness: () => checkReadiness({ redis: context.redis, workers, phase }),
      logger: logger.child({ component: 'http' }),
      api: archive && { archive, redis: context.redis, keys, cases: context.cases },
    });
  } catch (e) {
    await closeQueues();
    throw e;
  }
  closers.push(async (deadline) => {
    if (await settlesBy(server.close().then(closeQueues), deadline)) return [];
    logger.error('HTTP server did not close before the shutdown deadline: abandoned');
    return ['HTTP server'];
  });
  return server;
}

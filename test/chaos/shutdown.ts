/**
 * Item 8, graceful shutdown: a service process (risk workers and settlement) working through a backlog receives
 * SIGTERM, several times over. Each time it must exit by itself, cleanly, within its grace period, leaving no batch
 * active (finished or handed back, so the next process needs no stalled-job recovery); at the end every event has
 * exactly one decision and the namespace equals the reference model. A second variant freezes Redis before SIGTERM:
 * the process cannot finish its batch, exits when the grace period is over, and the batch is redelivered later.
 */
import { createContext } from '../../src/context.ts';
import { syntheticCharges } from '../../src/events/synthetic.ts';
import { silentLogger } from '../../src/logger.ts';
import { EventProducer } from '../../src/pipeline/producer.ts';
import { freshNamespace } from '../helpers/context.ts';
import { ReferenceModel } from '../helpers/reference-model.ts';
import { chaosSettings, decisionStreamLength, dropNamespace, paced, riskQueueKey, settlementsDue, sleep, startServiceProcess, unfinishedJobs, verifyNamespace, waitFor, writeConfigFile, type ServiceProcess, type Verification } from './harness.ts';
import { RestartableRedis } from './redis-restart.ts';
import { targetEnv, type RedisTarget } from '../../src/redis/target.ts';
import { SlotPipeline } from '../../src/redis/client.ts';

export interface ShutdownOptions {
  redisUrl: string | RedisTarget;
  events: number;
  users: number;
  /** Events per second offered while processes are started and stopped (`events` is the most sent). */
  rate: number;
  /** SIGTERMs, each to a fresh process after it ran `runMs` under load. */
  stops: number;
  runMs: number;
  graceMs: number;
}

export interface ShutdownFigures {
  events: number;
  stops: { exitCode: number | null; ms: number; decidedBefore: number; underLoad: boolean; activeAfter: number }[];
  /** Batches another process had to recover as stalled (0 when every shutdown finished or handed back its work). */
  stalledRecoveries: number;
  seconds: number;
  verification: Verification;
}

async function activeJobs(context: ReturnType<typeof createContext>, shards: number): Promise<number> {
  const pipe = new SlotPipeline(context.redis);
  for (let s = 0; s < shards; s++) {
    const key = riskQueueKey(context.keys, s, 'active');
    pipe.add(key, (p) => p.llen(key));
  }
  return (await pipe.exec()).reduce((n, [, v]) => n + Number(v), 0);
}

export async function shutdownUnderLoadScenario(options: ShutdownOptions): Promise<ShutdownFigures> {
  const namespace = freshNamespace('chaos-stop');
  // Default lock duration (30 s): a batch abandoned at shutdown would show up as a stalled recovery.
  const overrides = { pipeline: { maxBatch: 100, shutdownGraceMs: options.graceMs }, settlement: { tickSeconds: 1 } };
  const settings = chaosSettings(namespace, overrides);
  const configFile = writeConfigFile(overrides);
  const context = createContext(settings, options.redisUrl, silentLogger);
  const env = { ...targetEnv(options.redisUrl), RISKMON_NAMESPACE: namespace, RISKMON_CONFIG: configFile.path };
  const shards = settings.config.pipeline.shards;
  const startMs = Date.now() - 20 * 86_400_000;
  const input = [...syntheticCharges({ count: options.events, users: options.users, seed: 31, startMs, prefix: namespace })];
  const processes: ServiceProcess[] = [];
  const started = performance.now();
  try {
    // Load throughout: the producer keeps offering events while processes start and are stopped one after another.
    const producer = await context.openProducer({ clock: 'replay' });
    // Production goes on until the last stop is done, so every SIGTERM lands under load however slow start-up is.
    let stopsDone = false;
    const production = paced(producer, input, options.rate, 100, () => stopsDone).finally(() => producer.close());
    let produced = false;
    void production.then(() => (produced = true));

    const stops: ShutdownFigures['stops'] = [];
    for (let i = 0; i < options.stops; i++) {
      const p = startServiceProcess('main', env);
      processes.push(p);
      await p.waitForLine('riskmon started');
      await sleep(options.runMs);
      const decidedBefore = await decisionStreamLength(context.redis, context.keys);
      const underLoad = !produced;
      const t0 = performance.now();
      p.kill('SIGTERM');
      const { code } = await p.exited;
      stops.push({ exitCode: code, ms: Math.round(performance.now() - t0), decidedBefore, underLoad, activeAfter: await activeJobs(context, shards) });
    }
    stopsDone = true;
    const sent = await production;
    input.length = sent;
    const last = startServiceProcess('main', env);
    processes.push(last);
    await waitFor(async () => (await unfinishedJobs(context.redis, context.keys, shards)) === 0, 120_000, 'the queues to drain', 250);
    await waitFor(async () => (await settlementsDue(context.redis, context.keys)) === 0, 60_000, 'settlements to be released', 250);

    const model = ReferenceModel.fromConfig(settings.config);
    for (const e of input) model.apply(e);
    const verification = await verifyNamespace(context.redis, context.keys, context.cards, model, { input, settled: true });
    return {
      events: input.length,
      stops,
      stalledRecoveries: processes.reduce((n, p) => n + p.count('batch redelivered after a worker stopped'), 0),
      seconds: (performance.now() - started) / 1000,
      verification,
    };
  } finally {
    await Promise.all(processes.map(async (p) => (p.kill('SIGKILL'), await p.exited)));
    await dropNamespace(context.redis, context.keys);
    await context.close();
    configFile.remove();
  }
}

export interface FrozenShutdownFigures {
  exitCode: number | null;
  ms: number;
  graceMs: number;
  loggedTooLong: boolean;
  redelivered: number;
  verification: Verification;
}

/** SIGTERM while Redis does not answer: the process exits after its grace period and loses nothing. */
export async function shutdownWithRedisFrozenScenario(options: { events: number; users: number; graceMs: number }): Promise<FrozenShutdownFigures> {
  const redis = await RestartableRedis.start([]);
  const namespace = freshNamespace('chaos-stopfrozen');
  const overrides = { pipeline: { maxBatch: 50, shutdownGraceMs: options.graceMs, lockDurationMs: 2_000, stalledIntervalMs: 1_000 } };
  const settings = chaosSettings(namespace, overrides);
  const configFile = writeConfigFile(overrides);
  const context = createContext(settings, redis.url, silentLogger);
  const env = { REDIS_URL: redis.url, RISKMON_NAMESPACE: namespace, RISKMON_CONFIG: configFile.path };
  const input = [...syntheticCharges({ count: options.events, users: options.users, seed: 37, prefix: namespace })];
  const processes: ServiceProcess[] = [];
  try {
    const producer = await context.openProducer({ clock: 'replay' });
    await paced(producer, input, 0);
    await producer.close();
    const p = startServiceProcess('risk-worker', env);
    processes.push(p);
    await p.waitForLine('riskmon started');
    await waitFor(async () => (await decisionStreamLength(context.redis, context.keys)) >= input.length / 4, 60_000, 'decisions to flow', 20);
    redis.freeze();
    const t0 = performance.now();
    p.kill('SIGTERM');
    const { code } = await p.exited;
    const ms = Math.round(performance.now() - t0);
    redis.thaw();

    const next = startServiceProcess('risk-worker', env);
    processes.push(next);
    await waitFor(async () => (await unfinishedJobs(context.redis, context.keys, settings.config.pipeline.shards)) === 0, 60_000, 'the queues to drain', 250);
    await sleep(100);
    const model = ReferenceModel.fromConfig(settings.config);
    for (const e of input) model.apply(e);
    const verification = await verifyNamespace(context.redis, context.keys, context.cards, model, { input });
    return {
      exitCode: code,
      ms,
      graceMs: options.graceMs,
      loggedTooLong: p.count('shutdown took too long; exiting (unfinished batches will be redelivered)') === 1,
      redelivered: next.count('batch redelivered after a worker stopped'),
      verification,
    };
  } finally {
    redis.thaw();
    await Promise.all(processes.map(async (p) => (p.kill('SIGKILL'), await p.exited)));
    await context.close();
    await redis.stop();
    configFile.remove();
  }
}

/**
 * Item 9, Redis unreachable: worker processes (risk and settlement) and a producer reach Redis through a TCP proxy
 * that is cut for `outageMs` mid-stream (connections reset, new ones refused; Redis and its data untouched).
 * The workers pause and resume by themselves (none is restarted), the stream's producer (an ordinary connection)
 * waits and goes on, while a fail-fast producer gets a clear EnqueueError within seconds, both when it was already
 * open and when it is opened during the outage. Afterwards every event has exactly one decision, in order.
 */
import { createContext } from '../../src/context.ts';
import { syntheticCharges } from '../../src/events/synthetic.ts';
import { silentLogger } from '../../src/logger.ts';
import { EventProducer } from '../../src/pipeline/producer.ts';
import { createRedis } from '../../src/redis/connection.ts';
import { freshNamespace } from '../helpers/context.ts';
import { ReferenceModel } from '../helpers/reference-model.ts';
import { chaosSettings, decisionStreamLength, Fleet, paced, settlementsDue, sleep, TcpProxy, unfinishedJobs, verifyNamespace, waitFor, writeConfigFile, type Verification } from './harness.ts';
import { RestartableRedis } from './redis-restart.ts';
import { CRASH_PIPELINE } from './worker-crash.ts';

export interface UnreachableOptions {
  events: number;
  users: number;
  rate: number;
  outageMs: number;
}

export interface UnreachableFigures {
  events: number;
  outageMs: number;
  decisionsDuringOutage: number;
  /** From the end of the outage to the next new decision. */
  resumeMs: number;
  workerProcessesRestarted: number;
  failFast: { openProducerMs: number; openProducerError: string; newProducerMs: number; newProducerError: string };
  seconds: number;
  verification: Verification;
}

/** Runs `fn` and returns how long it took to fail and with what; throws if it does not fail. */
async function timeFailure(fn: () => Promise<unknown>): Promise<{ ms: number; error: string }> {
  const t0 = performance.now();
  try {
    await fn();
  } catch (e) {
    return { ms: Math.round(performance.now() - t0), error: `${(e as Error).name}: ${(e as Error).message}` };
  }
  throw new Error('expected a failure while Redis is unreachable, but the call succeeded');
}

export async function redisUnreachableScenario(options: UnreachableOptions): Promise<UnreachableFigures> {
  const redis = await RestartableRedis.start([]);
  const proxy = await TcpProxy.start(Number(new URL(redis.url).port));
  const namespace = freshNamespace('chaos-unreach');
  const overrides = { pipeline: CRASH_PIPELINE, settlement: { tickSeconds: 1 } };
  const settings = chaosSettings(namespace, overrides);
  const configFile = writeConfigFile(overrides);
  // The test reads Redis directly; everything under test goes through the proxy.
  const direct = createContext(settings, redis.url, silentLogger);
  const viaProxy = createContext(settings, proxy.url, silentLogger);
  const failFastConnection = createRedis(proxy.url, { failFast: true });
  const fleet = new Fleet({ REDIS_URL: proxy.url, RISKMON_NAMESPACE: namespace, RISKMON_CONFIG: configFile.path });
  const startMs = Date.now() - 20 * 86_400_000;
  const input = [...syntheticCharges({ count: options.events, users: options.users, seed: 41, startMs, prefix: namespace })];
  const started = performance.now();
  let producer: EventProducer | undefined;
  let failFastProducer: EventProducer | undefined;
  try {
    fleet.start('risk-worker', 2);
    fleet.start('settlement-worker');
    await Promise.all(fleet.processes().map((p) => p.waitForLine('riskmon started')));
    producer = await viaProxy.openProducer({ clock: 'replay' });
    failFastProducer = await viaProxy.openProducer({ clock: 'replay', connection: failFastConnection });
    const production = paced(producer, input, options.rate, 100);

    await waitFor(async () => (await decisionStreamLength(direct.redis, direct.keys)) >= input.length / 3, 60_000, 'a third of the stream to be decided', 20);
    await proxy.cut();
    const decidedAtCut = await decisionStreamLength(direct.redis, direct.keys);
    const outageStart = performance.now();

    // A fail-fast producer that was open when Redis went away, and one opened during the outage.
    const openFailure = await timeFailure(async () => {
      failFastProducer!.send({ ...input[0]!, eventId: `${namespace}-probe` });
      await failFastProducer!.flush();
    });
    const newFailure = await timeFailure(async () => {
      const connection = createRedis(proxy.url, { failFast: true });
      try {
        await viaProxy.openProducer({ clock: 'replay', connection });
      } finally {
        connection.disconnect();
      }
    });

    await sleep(Math.max(0, options.outageMs - (performance.now() - outageStart)));
    const decidedDuringOutage = (await decisionStreamLength(direct.redis, direct.keys)) - decidedAtCut;
    await proxy.restore();
    const restoredAt = performance.now();
    const atRestore = await decisionStreamLength(direct.redis, direct.keys);
    await waitFor(async () => (await decisionStreamLength(direct.redis, direct.keys)) > atRestore, 60_000, 'decisions to resume', 20);
    const resumeMs = Math.round(performance.now() - restoredAt);

    await production;
    await waitFor(async () => (await unfinishedJobs(direct.redis, direct.keys, settings.config.pipeline.shards)) === 0, 120_000, 'the queues to drain', 250);
    await waitFor(async () => (await settlementsDue(direct.redis, direct.keys)) === 0, 60_000, 'settlements to be released', 250);
    const crashed = fleet.unexpectedExits();
    if (crashed.length) throw new Error(`worker processes died on their own:\n${crashed.join('\n')}`);

    const model = ReferenceModel.fromConfig(settings.config);
    for (const e of input) model.apply(e);
    const verification = await verifyNamespace(direct.redis, direct.keys, direct.cards, model, { input, settled: true });
    return {
      events: input.length,
      outageMs: options.outageMs,
      decisionsDuringOutage: decidedDuringOutage,
      resumeMs,
      workerProcessesRestarted: fleet.all.length - 3,
      failFast: { openProducerMs: openFailure.ms, openProducerError: openFailure.error, newProducerMs: newFailure.ms, newProducerError: newFailure.error },
      seconds: (performance.now() - started) / 1000,
      verification,
    };
  } finally {
    await producer?.close();
    await failFastProducer?.close().catch(() => undefined);
    failFastConnection.disconnect();
    await fleet.stop();
    await viaProxy.close();
    await direct.close();
    await proxy.stop();
    await redis.stop();
    configFile.remove();
  }
}

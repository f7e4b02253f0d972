/**
 * Item 1, worker crashes: a paced synthetic stream flows through real worker processes (risk workers and the
 * settlement worker) while they are killed with SIGKILL every few seconds and replaced. Afterwards every event
 * has exactly one decision, the decisions, day totals and card windows equal the reference model fed the input, and
 * every settlement is recorded once in the ledger. Redeliveries are counted from the workers' own logs.
 */
import { freshNamespace } from '../helpers/context.ts';
import { SlotPipeline } from '../../src/redis/client.ts';
import { targetEnv, type RedisTarget } from '../../src/redis/target.ts';
import { createContext } from '../../src/context.ts';
import { CardHasher } from '../../src/events/card.ts';
import { syntheticCharges } from '../../src/events/synthetic.ts';
import { silentLogger } from '../../src/logger.ts';
import { EventProducer } from '../../src/pipeline/producer.ts';
import { ReferenceModel } from '../helpers/reference-model.ts';
import { chaosSettings, dropNamespace, Fleet, paced, riskQueueKey, settlementsDue, sleep, unfinishedJobs, verifyNamespace, waitFor, writeConfigFile, type Verification } from './harness.ts';

export interface WorkerCrashOptions {
  /** One Redis (a URL) or a Redis Cluster: the workers are pointed at it as production points them. */
  redisUrl: string | RedisTarget;
  events: number;
  users: number;
  /** Events per second offered by the producer. */
  rate: number;
  riskWorkers: number;
  killEveryMs: number;
  /** Keep the namespace afterwards (inspection). @defaultValue false */
  keep?: boolean;
}

export interface WorkerCrashFigures {
  events: number;
  uniqueEvents: number;
  kills: number;
  redeliveredBatches: number;
  seconds: number;
  verification: Verification;
}

/** Short locks so a dead worker's batch is redelivered within seconds. */
export const CRASH_PIPELINE = { lockDurationMs: 2_000, stalledIntervalMs: 1_000, maxBatch: 50, lingerMs: 5 };

export async function workerCrashScenario(options: WorkerCrashOptions): Promise<WorkerCrashFigures> {
  const namespace = freshNamespace('chaos-crash');
  const overrides = { pipeline: CRASH_PIPELINE, settlement: { tickSeconds: 1 } };
  const settings = chaosSettings(namespace, overrides);
  const configFile = writeConfigFile(overrides);
  const context = createContext(settings, options.redisUrl, silentLogger);
  const fleet = new Fleet({ ...targetEnv(options.redisUrl), RISKMON_NAMESPACE: namespace, RISKMON_CONFIG: configFile.path });
  // The replay clock (contract v1.1): events weeks old are refused by a wall clock, and settle at T+1 only when
  // the clock is theirs. The model's default clock is the same replay clock.
  const producer = await context.openProducer({ clock: 'replay' });
  const started = performance.now();
  // Event times a few weeks back, so every settlement is already due and the settlement worker releases it.
  const startMs = Date.now() - 20 * 86_400_000;
  // A reserve beyond `events` is sent only if no kill has hit a batch yet: the test must bite.
  const all = [...syntheticCharges({ count: Math.ceil(options.events * 1.5), users: options.users, seed: 7, startMs, prefix: namespace })];
  const input = all.slice(0, options.events);

  try {
    fleet.start('risk-worker', options.riskWorkers);
    fleet.start('settlement-worker');
    await Promise.all(fleet.processes().map((p) => p.waitForLine('riskmon started')));
    const shards = settings.config.pipeline.shards;
    const redelivered = () => fleet.count('batch redelivered after a worker stopped');
    const backlog = () => unfinishedJobs(context.redis, context.keys, shards);
    const busyShards = async () => {
      const pipe = new SlotPipeline(context.redis);
      for (let s = 0; s < shards; s++) pipe.add(riskQueueKey(context.keys, s, 'active'), (p) => p.llen(riskQueueKey(context.keys, s, 'active')));
      return (await pipe.exec()).filter(([, n]) => Number(n) > 0).length;
    };
    let producing = true;
    const killer = (async () => {
      // Every few seconds, once the workers have work (killing an idle worker proves nothing): the risk worker
      // processes, all of them at once since BullMQ keeps a busy shard with the worker that has it, or every fourth
      // time the settlement worker. Until the backlog is gone.
      // The first kill comes as soon as the workers are busy: a fast pipeline may drain a small stream within
      // one interval, and a kill of an idle worker proves nothing.
      for (let k = 1; producing || (await backlog()) > 0; k++) {
        while (producing && (await busyShards()) < shards - 1) await sleep(20);
        const entry = k % 4 === 0 ? 'settlement-worker' : 'risk-worker';
        const killed = fleet.killAllAndRestart(entry);
        if (process.env.CHAOS_DEBUG) console.error(`kill ${k}: ${killed} ${entry} busy=${await busyShards()} backlog=${await backlog()} redelivered=${redelivered()}`);
        await sleep(options.killEveryMs);
      }
    })();
    await paced(producer, input, options.rate);
    // The reserve, a quarter at a time, only while no kill has hit a batch yet (the stream was over too soon).
    for (let extra = options.events; extra < all.length && redelivered() === 0; ) {
      await waitFor(async () => (await backlog()) === 0 || redelivered() > 0, 120_000, 'a redelivery or the backlog to drain', 100);
      if (redelivered() > 0) break;
      const more = all.slice(extra, extra + Math.ceil(options.events / 4));
      await paced(producer, more, options.rate);
      input.push(...more);
      extra += more.length;
    }
    producing = false;
    await killer;

    await waitFor(async () => (await unfinishedJobs(context.redis, context.keys, shards)) === 0, 120_000, 'the risk queues to drain', 250);
    await waitFor(async () => (await settlementsDue(context.redis, context.keys)) === 0, 60_000, 'every settlement to be released', 250);
    const crashed = fleet.unexpectedExits();
    if (crashed.length) throw new Error(`worker processes died on their own:\n${crashed.join('\n')}`);

    const model = ReferenceModel.fromConfig(settings.config);
    for (const e of input) model.apply(e);
    const verification = await verifyNamespace(context.redis, context.keys, new CardHasher(settings.cardSecret), model, { input, settled: true });
    return {
      events: input.length,
      uniqueEvents: model.decisions.size,
      kills: fleet.kills,
      redeliveredBatches: fleet.count('batch redelivered after a worker stopped'),
      seconds: (performance.now() - started) / 1000,
      verification,
    };
  } finally {
    await producer.close();
    await fleet.stop();
    if (!options.keep) await dropNamespace(context.redis, context.keys);
    await context.close();
    configFile.remove();
  }
}

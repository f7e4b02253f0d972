/**
 * A master of the Redis Cluster killed mid-stream (SIGKILL), its replica promoted: the worker processes and the
 * producer carry on by themselves, nothing is decided twice, and what was decided is exactly what the reference
 * model says of those events. Replication is asynchronous, so events acknowledged just before the kill may be lost
 * with the master: the scenario counts them (docs/reliability.md reports the measurement).
 */
import { createContext } from '../../src/context.ts';
import { CardHasher } from '../../src/events/card.ts';
import { syntheticCharges } from '../../src/events/synthetic.ts';
import { silentLogger } from '../../src/logger.ts';
import { targetEnv, type ClusterRedisTarget } from '../../src/redis/target.ts';
import { freshNamespace } from '../helpers/context.ts';
import type { TestCluster } from '../helpers/cluster.ts';
import { ReferenceModel } from '../helpers/reference-model.ts';
import { chaosSettings, decisionStreamLength, Fleet, paced, readDecisions, settlementsDue, sleep, unfinishedJobs, verifyNamespace, waitFor, writeConfigFile, type Verification } from './harness.ts';
import { CRASH_PIPELINE } from './worker-crash.ts';

export interface FailoverOptions {
  cluster: TestCluster;
  target: ClusterRedisTarget;
  events: number;
  users: number;
  /** Events per second offered by the producer. */
  rate: number;
  riskWorkers: number;
}

export interface FailoverFigures {
  events: number;
  /** Decided when the master was killed. */
  decidedAtKill: number;
  /** From the kill until the replica served the master's slots. */
  failoverMs: number;
  /** Decisions of the killed master's shard made after the failover: its workers resumed by themselves. */
  decidedAfterFailover: number;
  /** Events the producer had acknowledged that have no decision: lost with the master's unreplicated writes. */
  lost: number;
  verification: Verification;
}

export async function failoverScenario(options: FailoverOptions): Promise<FailoverFigures> {
  const { cluster } = options;
  const namespace = freshNamespace('chaos-failover');
  const overrides = { pipeline: { ...CRASH_PIPELINE, watchdogSeconds: 5 }, settlement: { tickSeconds: 1 } };
  const settings = chaosSettings(namespace, overrides);
  const configFile = writeConfigFile(overrides);
  const context = createContext(settings, options.target, silentLogger);
  const fleet = new Fleet({ ...targetEnv(options.target), RISKMON_NAMESPACE: namespace, RISKMON_CONFIG: configFile.path });
  const producer = await context.openProducer({ clock: 'replay' });
  const startMs = Date.now() - 20 * 86_400_000;
  const input = [...syntheticCharges({ count: options.events, users: options.users, seed: 11, startMs, prefix: namespace })];
  const decided = () => decisionStreamLength(context.redis, context.keys);
  try {
    fleet.start('risk-worker', options.riskWorkers);
    fleet.start('settlement-worker');
    await Promise.all(fleet.processes().map((p) => p.waitForLine('riskmon started')));
    // The master of shard 0's slot: it holds that shard's queue and state, and some claim buckets.
    const victim = await cluster.masterOf(context.keys.shardBase(0));
    const killing = (async () => {
      await waitFor(async () => (await decided()) >= options.events / 3, 120_000, 'a third of the stream to be decided', 20);
      const decidedAtKill = await decided();
      const at = performance.now();
      await cluster.kill(victim, 'SIGKILL');
      await cluster.waitForFailover(victim);
      const failoverMs = performance.now() - at;
      return { decidedAtKill, failoverMs, shard0AtFailover: await context.redis.xlen(context.keys.decisionStream(0)) };
    })();
    await paced(producer, input, options.rate);
    await producer.flush();
    const { decidedAtKill, failoverMs, shard0AtFailover } = await killing;

    await waitFor(async () => (await unfinishedJobs(context.redis, context.keys, settings.config.pipeline.shards)) === 0, 120_000, 'the risk queues to drain', 250);
    await waitFor(async () => (await settlementsDue(context.redis, context.keys)) === 0, 60_000, 'every settlement to be released', 250);
    const crashed = fleet.unexpectedExits();
    if (crashed.length) throw new Error(`worker processes died on their own:\n${crashed.join('\n')}`);

    // What was decided must be exactly what the model says of those events, in production order.
    const decisions = await readDecisions(context.redis, context.keys);
    const kept = input.filter((e) => decisions.has(e.eventId));
    const model = ReferenceModel.fromConfig(settings.config);
    for (const e of kept) model.apply(e);
    const verification = await verifyNamespace(context.redis, context.keys, new CardHasher(settings.cardSecret), model, { input: kept, settled: true });
    return {
      events: input.length,
      decidedAtKill,
      failoverMs,
      decidedAfterFailover: (await context.redis.xlen(context.keys.decisionStream(0))) - shard0AtFailover,
      lost: input.length - kept.length,
      verification,
    };
  } finally {
    await producer.close();
    await fleet.stop();
    await sleep(0);
    await context.close();
    configFile.remove();
  }
}

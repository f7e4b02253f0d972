/**
 * What pipeline.replicaAcks buys, on a real Redis Cluster whose masters have two replicas each. Replication lag is
 * made long on purpose: the replicas of one master are frozen (SIGSTOP) while the producer sends, then that master is
 * killed and a replica that never got those writes is promoted. Without replicaAcks the producer acknowledged events
 * that are now gone; with it, its flush failed instead and the events it sends again are decided.
 */
import { createContext } from '../../src/context.ts';
import { CardHasher } from '../../src/events/card.ts';
import { syntheticCharges } from '../../src/events/synthetic.ts';
import { silentLogger } from '../../src/logger.ts';
import { EnqueueError } from '../../src/pipeline/producer.ts';
import { startRiskWorkers } from '../../src/pipeline/risk-workers.ts';
import type { ClusterRedisTarget } from '../../src/redis/target.ts';
import type { TestCluster } from '../helpers/cluster.ts';
import { freshNamespace } from '../helpers/context.ts';
import { ReferenceModel } from '../helpers/reference-model.ts';
import { chaosSettings, readDecisions, sleep, unfinishedJobs, verifyNamespace, waitFor, type Verification } from './harness.ts';
import { CRASH_PIPELINE } from './worker-crash.ts';

export interface ReplicaAcksFigures {
  events: number;
  /** The flush during the frozen replicas failed (replicaAcks > 0) and its events were sent again after the failover. */
  flushRefused: boolean;
  /** Sends after the failover until a flush was confirmed (the new master's replica has to resync first). */
  resendAttempts: number;
  /** Events acknowledged in the end (every one: a refused flush is sent again) that have no decision. */
  lost: number;
  /** Of those, still undecided after the lost events were sent again. */
  lostAfterResend: number;
  verification: Verification;
}

export async function frozenReplicaFailover(options: { cluster: TestCluster; target: ClusterRedisTarget; replicaAcks: number; events: number }): Promise<ReplicaAcksFigures> {
  const { cluster } = options;
  const namespace = freshNamespace('chaos-acks');
  const settings = chaosSettings(namespace, { pipeline: { ...CRASH_PIPELINE, shards: 16, replicaAcks: options.replicaAcks, replicaAckTimeoutMs: 500 } });
  const context = createContext(settings, options.target, silentLogger);
  const input = [...syntheticCharges({ count: options.events, users: 80, seed: 23, startMs: Date.now() - 20 * 86_400_000, prefix: namespace })];
  const half = Math.floor(input.length / 2);
  const send = async (events: typeof input) => {
    const producer = await context.openProducer({ clock: 'replay' });
    try {
      for (const e of events) producer.send(e);
      await producer.flush();
    } finally {
      await producer.close();
    }
  };
  try {
    // A master with both its replicas (an earlier run may have failed one over): the one of the first such shard.
    let victim: number | undefined;
    let replicas: typeof cluster.nodes = [];
    for (let shard = 0; shard < settings.config.pipeline.shards && !victim; shard++) {
      const master = await cluster.masterOf(context.keys.shardBase(shard));
      replicas = cluster.nodes.filter((n) => n.alive && n.role === 'replica' && n.masterPort === master);
      if (replicas.length >= 2) victim = master;
    }
    if (!victim) throw new Error('no master serving a shard has two live replicas; this scenario needs one');

    await send(input.slice(0, half));
    await sleep(500); // the first half is on the replicas (loopback replication lags well under a millisecond)
    // Frozen, and cut off: a frozen replica's kernel would still take in what the master sends, and hand it over
    // when it resumes. Cut off, it cannot reconnect while frozen, and the writes below stay on the master alone.
    for (const r of replicas) await cluster.kill(r.port, 'SIGSTOP');
    await cluster.call(victim, 'CLIENT', 'KILL', 'TYPE', 'replica');
    let flushRefused = false;
    try {
      await send(input.slice(half));
    } catch (e) {
      if (!(e instanceof EnqueueError)) throw e;
      flushRefused = true;
    }
    await cluster.kill(victim, 'SIGKILL');
    for (const r of replicas) await cluster.kill(r.port, 'SIGCONT');
    await cluster.waitForFailover(victim);

    // The caller's part of the contract: what a failed flush did not acknowledge is sent again.
    let resendAttempts = 0;
    if (flushRefused) {
      await waitFor(
        async () => {
          resendAttempts++;
          return send(input.slice(half)).then(
            () => true,
            (e: unknown) => {
              if (e instanceof EnqueueError) return false;
              throw e;
            },
          );
        },
        60_000,
        'a resend to be confirmed by the new master and its replica',
        500,
      );
    }

    const decide = async () => {
      const workers = await startRiskWorkers({ connection: context.queueConnection, keys: context.keys, pipeline: settings.config.pipeline, processor: context.processor, logger: silentLogger, metrics: context.metrics });
      try {
        await waitFor(async () => (await unfinishedJobs(context.redis, context.keys, settings.config.pipeline.shards)) === 0, 60_000, 'the risk queues to drain', 100);
      } finally {
        await workers.close();
      }
      return readDecisions(context.redis, context.keys);
    };
    const decisions = await decide();
    const kept = input.filter((e) => decisions.has(e.eventId));
    const model = ReferenceModel.fromConfig(settings.config);
    for (const e of kept) model.apply(e);
    const verification = await verifyNamespace(context.redis, context.keys, new CardHasher(settings.cardSecret), model, { input: kept });
    // Recovery from a loss: the lost events sent again. Their claims outlived their jobs (other masters hold most
    // claim buckets); a claim with the same content is a repeat, and a repeat is queued and decided as usual.
    const lost = input.filter((e) => !decisions.has(e.eventId));
    if (lost.length) await send(lost);
    const afterResend = lost.length ? await decide() : decisions;
    return { events: input.length, flushRefused, resendAttempts, lost: lost.length, lostAfterResend: input.filter((e) => !afterResend.has(e.eventId)).length, verification };
  } finally {
    await context.close();
  }
}

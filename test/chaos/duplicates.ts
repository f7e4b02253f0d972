/**
 * Item 3, duplicates and reordering: the same stream is sent three times at once by three producers, each copy
 * shuffled in bursts (so deliveries are duplicated and out of order), and consumed by two sets of workers.
 * Afterwards there is exactly one decision per unique event, every other copy was answered as a duplicate, and
 * day totals, card windows and the settlement schedule equal the reference model fed the events in the order the
 * service actually evaluated them (the decision stream's order).
 */
import { createContext } from '../../src/context.ts';
import { CardHasher } from '../../src/events/card.ts';
import { prng, syntheticCharges } from '../../src/events/synthetic.ts';
import { silentLogger } from '../../src/logger.ts';
import { EventProducer } from '../../src/pipeline/producer.ts';
import { startRiskWorkers } from '../../src/pipeline/risk-workers.ts';
import { createRedis } from '../../src/redis/connection.ts';
import type { RedisTarget } from '../../src/redis/target.ts';
import { freshNamespace } from '../helpers/context.ts';
import { ReferenceModel } from '../helpers/reference-model.ts';
import { chaosSettings, dropNamespace, paced, readDecisionStream, unfinishedJobs, verifyNamespace, waitFor, type Verification } from './harness.ts';

export interface DuplicatesOptions {
  redisUrl: string | RedisTarget;
  events: number;
  users: number;
  /** Events per shuffled burst. */
  burst: number;
  copies?: number;
}

export interface DuplicatesFigures {
  events: number;
  copies: number;
  deliveries: number;
  duplicatesAnswered: number;
  /** Users whose charges were evaluated in another order than produced (the shuffle bit). */
  usersReordered: number;
  seconds: number;
  verification: Verification;
}

/** Shuffles each run of `burst` consecutive events (Fisher–Yates, seeded). */
export function shuffleInBursts<T>(items: T[], burst: number, seed: number): T[] {
  const rand = prng(seed);
  const out = [...items];
  for (let start = 0; start < out.length; start += burst) {
    const end = Math.min(out.length, start + burst);
    for (let i = end - 1; i > start; i--) {
      const j = start + Math.floor(rand() * (i - start + 1));
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
  }
  return out;
}

export async function duplicatesScenario(options: DuplicatesOptions): Promise<DuplicatesFigures> {
  const copies = options.copies ?? 3;
  const settings = chaosSettings(freshNamespace('chaos-dup'), { pipeline: { maxBatch: 100 } });
  const context = createContext(settings, options.redisUrl, silentLogger);
  const { config } = settings;
  const workerConnections = [createRedis(options.redisUrl), createRedis(options.redisUrl)];
  const workerSets = await Promise.all(
    workerConnections.map((connection) =>
      startRiskWorkers({ connection, keys: context.keys, pipeline: config.pipeline, processor: context.processor, logger: silentLogger, metrics: context.metrics }),
    ),
  );
  const producerConnections = Array.from({ length: copies }, () => createRedis(options.redisUrl));
  // Replay clocks (contract v1.1): the synthetic stream is dated in the past, which a wall clock refuses. Each copy's
  // clock is the largest occurredAt it sent so far: within a shuffle burst of the model's replay clock in the
  // stream's order, which changes neither a settlement (T+1 is hours ahead) nor a prune here.
  const producers = await Promise.all(producerConnections.map((connection) => context.openProducer({ connection, clock: 'replay' })));
  const started = performance.now();
  const input = [...syntheticCharges({ count: options.events, users: options.users, seed: 11, prefix: context.keys.namespace })];
  try {
    await Promise.all(producers.map((p, i) => paced(p, shuffleInBursts(input, options.burst, 100 + i), 0, 500)));
    await waitFor(async () => (await unfinishedJobs(context.redis, context.keys, config.pipeline.shards)) === 0, 120_000, 'the queues to drain', 100);

    // Feed the model in the order the service evaluated (the stream's order), then compare everything.
    const evaluated = await readDecisionStream(context.redis, context.keys);
    const byId = new Map(input.map((e) => [e.eventId, e]));
    const model = ReferenceModel.fromConfig(config);
    for (const d of evaluated) model.apply(byId.get(d.eventId)!);
    const verification = await verifyNamespace(context.redis, context.keys, new CardHasher(settings.cardSecret), model, { orderedPerUser: false });
    if (model.decisions.size !== byId.size) verification.problems.push(`${byId.size - model.decisions.size} events never decided`);

    const produced = new Map<string, string[]>();
    for (const e of input) (produced.get(e.userId) ?? produced.set(e.userId, []).get(e.userId)!).push(e.eventId);
    const decided = new Map<string, string[]>();
    for (const d of evaluated) (decided.get(d.userId) ?? decided.set(d.userId, []).get(d.userId)!).push(d.eventId);
    const usersReordered = [...produced].filter(([user, ids]) => decided.get(user)?.join() !== ids.join()).length;

    const duplicates = (await context.metrics.duplicates.get()).values[0]?.value ?? 0;
    return {
      events: input.length,
      copies,
      deliveries: input.length * copies,
      duplicatesAnswered: duplicates,
      usersReordered,
      seconds: (performance.now() - started) / 1000,
      verification,
    };
  } finally {
    await Promise.all(producers.map((p) => p.close()));
    await Promise.all(workerSets.map((w) => w.close()));
    await Promise.all([...workerConnections, ...producerConnections].map((c) => c.quit()));
    await dropNamespace(context.redis, context.keys);
    await context.close();
  }
}

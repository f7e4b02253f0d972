/**
 * The paths the benchmark compares, each on a freshly emptied private Redis with the same event stream:
 * - reference: the production processor fed one event at a time and awaited (the one-event-at-a-time path);
 * - ceiling:   the rules script alone, pipelined on one connection, no queue;
 * - baseline:  plain BullMQ, one job per event, the same rules script per job, in separate worker processes;
 * - riskmon:   the production path, EventProducer → shard queues → risk-worker processes → decisions →
 *              settlement scheduling.
 * Every run drives events either paced at an offered rate or as fast as it can (saturation), then waits until the
 * decision stream holds one decision per event, and measures throughput, latency and CPU.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { loadSettings, type Settings } from '../../src/config.ts';
import { createContext, type Context } from '../../src/context.ts';
import type { ChargeEvent } from '../../src/events/schema.ts';
import { silentLogger } from '../../src/logger.ts';
import { createPacer } from '../../src/pacing.ts';
import { EventProducer, openRiskQueues } from '../../src/pipeline/producer.ts';
import { defineScript } from '../../src/redis/scripts.ts';
import { CHARGES_PER_CALL, evaluateChargesScript } from '../../src/rules/charge-rules.ts';
import { readDecisions, type DecidedRun } from './decisions.ts';
import { BASELINE_WORKER_ENTRY, machineCpuSeconds, processCpuSeconds, RISK_WORKER_ENTRY, startProcesses, type WorkerProcesses } from './processes.ts';
import { commandStats, redisCpuSeconds, type CommandStat } from './redis-probe.ts';
import { isCluster, masterNodes, SlotPipeline, type RedisClient } from '../../src/redis/client.ts';
import { targetEnv, type RedisTarget } from '../../src/redis/target.ts';

export const BASELINE_QUEUE = 'baseline';

export type PathName = 'reference' | 'ceiling' | 'baseline' | 'riskmon';

export interface BenchSetup {
  /** The private Redis of the run: one server (a URL) or a cluster. */
  redisUrl: string | RedisTarget;
  /** Directory for the generated config file. */
  workDir: string;
  /** Overrides merged over config/default.json for every path (pipeline tuning, retention). */
  overrides: Record<string, unknown>;
  cardSecret: string;
  /** riskmon worker processes. */
  riskWorkers: number;
  /** Plain-BullMQ worker processes and the concurrency of each. */
  baselineWorkers: number;
  baselineConcurrency: number;
  /** Log progress lines. */
  log: (line: string) => void;
}

export interface LatencyStats {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface RunResult {
  path: PathName;
  /** Offered events/s, or null when driven as fast as possible. */
  offered: number | null;
  events: number;
  /** First event offered → last decision stored. */
  seconds: number;
  eventsPerSecond: number;
  latencyMs: LatencyStats;
  redisCpuUsPerEvent: number;
  /** CPU of the worker processes and of this process (producer / pipelining client), per event. */
  clientCpuUsPerEvent: number;
  /** The worker processes' share of clientCpuUsPerEvent (0 for paths without worker processes). */
  workerCpuUsPerEvent: number;
  /** Machine-wide busy cores during the run, and how much of that was not this benchmark (other tenants). */
  machineBusyCores: number;
  otherBusyCores: number;
  topCommands: CommandStat[];
  decisions: DecidedRun;
}

export function writeBenchConfig(setup: BenchSetup): string {
  const file = join(setup.workDir, 'bench-config.json');
  writeFileSync(file, JSON.stringify(setup.overrides, null, 2));
  return file;
}

function settingsFor(setup: BenchSetup, configFile: string, namespace: string): Settings {
  return loadSettings({ configFile, namespace, env: { RISKMON_CARD_SECRET: setup.cardSecret } });
}

/**
 * The producer clock of every benchmark path: an hour after the synthetic streams end (2026-03-10 00:00 + 26 h,
 * Shanghai, give or take minutes), exactly the first T+1 instant, so no measured charge is late or ahead and
 * every path decides with the same clock.
 */
export const BENCH_CLOCK_MS = Date.parse('2026-03-11T03:00:00+08:00');

function workerEnv(setup: BenchSetup, configFile: string, namespace: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...targetEnv(setup.redisUrl),
    RISKMON_CONFIG: configFile,
    RISKMON_NAMESPACE: namespace,
    RISKMON_CARD_SECRET: setup.cardSecret,
    ...extra,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Empties the private benchmark Redis (never the shared one: the caller started this server). */
export async function resetRedis(redis: RedisClient): Promise<void> {
  if (isCluster(redis)) await redis.ping();
  for (const node of masterNodes(redis)) {
    await node.flushall('SYNC');
    await node.config('RESETSTAT');
  }
}

interface Drive {
  /** Offer events [from, to); may return a promise to apply backpressure. */
  send(from: number, to: number): void | Promise<void>;
  /** After the last send. */
  finish?(): Promise<void>;
}

/**
 * Offers `n` events: paced at `rate` events/s, each as soon as it is due (every event due by then at each wake-up),
 * or, with rate null, in chunks as fast as `send` takes them. Records when each event was offered.
 */
async function drive(n: number, rate: number | null, sendAt: Float64Array, d: Drive, chunk = 2_000): Promise<void> {
  // No slack: an offered load is offered on schedule, not in bursts a sleep apart.
  const pacer = createPacer(rate ?? 0, { slackMs: 0 });
  let i = 0;
  while (i < n) {
    const from = i;
    i = Math.min(n, rate ? pacer.due() : i + chunk);
    if (i > from) {
      sendAt.fill(Date.now(), from, i);
      await d.send(from, i);
    }
    await pacer.wait(i - from);
    // A sender that is behind still lets the event loop run (the replies of what it sent).
    await new Promise((r) => setImmediate(r));
  }
  await d.finish?.();
}

/** Entries in every shard's decision stream. */
async function streamLength(redis: RedisClient, streamKeys: readonly string[]): Promise<number> {
  const lengths = await Promise.all(streamKeys.map((k) => redis.xlen(k)));
  return lengths.reduce((a, b) => a + b, 0);
}

function decisionStreams(ctx: Context): string[] {
  return ctx.keys.shardIds.map((s) => ctx.keys.decisionStream(s));
}

async function waitForDecisions(redis: RedisClient, streamKeys: readonly string[], n: number, failed: Promise<never> | undefined): Promise<void> {
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const len = await streamLength(redis, streamKeys);
    if (len >= n) return;
    if (len !== last) {
      last = len;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > 60_000) {
      throw new Error(`no progress for 60 s: ${len} of ${n} decisions`);
    }
    await (failed ? Promise.race([sleep(20), failed]) : sleep(20));
  }
}

export function percentiles(values: Float64Array): LatencyStats {
  if (values.length === 0) return { p50: NaN, p95: NaN, p99: NaN, max: NaN };
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted[sorted.length - 1]! };
}

interface Meter {
  stop(): { seconds: number; redisCpu: number; clientCpu: number; workerCpu: number; machineBusy: number };
}

interface Started {
  meter: Meter;
  redisAtStart: number;
  /** The decision stream before the run (a run may follow another in the same namespace: the warm-ups). */
  decisionsBefore: number;
  /** Per shard's stream, its last id before the run. */
  lastDecisionIdBefore: (string | undefined)[];
}

async function startMeter(redis: RedisClient, pids: number[], streamKeys: readonly string[]): Promise<Started> {
  const decisionsBefore = await streamLength(redis, streamKeys);
  const lastDecisionIdBefore = await Promise.all(streamKeys.map(async (k) => (await redis.xrevrange(k, '+', '-', 'COUNT', 1))[0]?.[0]));
  const redisAtStart = await redisCpuSeconds(redis);
  const workersAt = () => pids.reduce((s, p) => s + processCpuSeconds(p), 0);
  const clientAt = () => workersAt() + cpuOfThisProcess();
  const clientStart = clientAt();
  const workersStart = workersAt();
  const machineStart = machineCpuSeconds();
  const t0 = performance.now();
  return {
    redisAtStart,
    decisionsBefore,
    lastDecisionIdBefore,
    meter: {
      stop() {
        const machine = machineCpuSeconds();
        return {
          seconds: (performance.now() - t0) / 1000,
          redisCpu: 0,
          clientCpu: clientAt() - clientStart,
          workerCpu: workersAt() - workersStart,
          machineBusy: machine.busy - machineStart.busy,
        };
      },
    },
  };
}

function cpuOfThisProcess(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Shared tail of every run: wait, measure, read decisions, compute latency. */
async function finishRun(
  path: PathName,
  ctx: Context,
  events: ChargeEvent[],
  offered: number | null,
  sendAt: Float64Array,
  started: Started,
  failed: Promise<never> | undefined,
): Promise<RunResult> {
  const n = events.length;
  await waitForDecisions(ctx.redis, decisionStreams(ctx), started.decisionsBefore + n, failed);
  const m = started.meter.stop();
  const redisCpu = (await redisCpuSeconds(ctx.redis)) - started.redisAtStart;
  const decisions = await readDecisions(ctx.redis, decisionStreams(ctx), { after: started.lastDecisionIdBefore });
  const latencies = new Float64Array(n);
  let firstSend = Infinity;
  let undecided = 0;
  events.forEach((e, i) => {
    firstSend = Math.min(firstSend, sendAt[i]!);
    const decidedAt = decisions.decidedAtMs.get(e.eventId);
    if (decidedAt === undefined) undecided++;
    latencies[i] = (decidedAt ?? NaN) - sendAt[i]!;
  });
  // The stream reached its length, so every event must be in it: a miss means the run measured something else.
  if (undecided > 0) throw new Error(`${path}: ${undecided} of ${n} events have no decision in the stream after the run`);
  const seconds = Math.max(0.001, (decisions.lastMs - firstSend) / 1000);
  const ourCpu = redisCpu + m.clientCpu;
  return {
    path,
    offered,
    events: n,
    seconds,
    eventsPerSecond: n / seconds,
    latencyMs: percentiles(latencies),
    redisCpuUsPerEvent: (redisCpu * 1e6) / n,
    clientCpuUsPerEvent: (m.clientCpu * 1e6) / n,
    workerCpuUsPerEvent: (m.workerCpu * 1e6) / n,
    machineBusyCores: m.machineBusy / m.seconds,
    otherBusyCores: Math.max(0, (m.machineBusy - ourCpu) / m.seconds),
    topCommands: (await commandStats(ctx.redis)).slice(0, 40),
    decisions,
  };
}

/**
 * One event at a time through the production processor: each event is a batch of one, and the next event of the
 * same user starts only after its decision is stored. Decisions depend only on the user's own history, so users
 * are spread over independent lanes (by a hash unrelated to the production shards) to keep this quick.
 */
export async function runReference(setup: BenchSetup, configFile: string, events: ChargeEvent[], namespace = 'bench-reference', lanes = 16): Promise<RunResult> {
  const ctx = createContext(settingsFor(setup, configFile, namespace), setup.redisUrl, silentLogger);
  try {
    const sendAt = new Float64Array(events.length);
    const byLane: number[][] = Array.from({ length: lanes }, () => []);
    events.forEach((e, i) => byLane[laneOf(e.userId, lanes)]!.push(i));
    const started = await startMeter(ctx.redis, [], decisionStreams(ctx));
    await Promise.all(
      byLane.map(async (indexes) => {
        for (const i of indexes) {
          sendAt[i] = Date.now();
          await ctx.processor.process({ v: 2, events: [events[i]], clocks: [BENCH_CLOCK_MS], enqueuedAt: sendAt[i] }, `bench:${i}`);
        }
      }),
    );
    return await finishRun('reference', ctx, events, null, sendAt, started, undefined);
  } finally {
    await ctx.close();
  }
}

/** djb2 over the user id: deliberately not the production shard function. */
function laneOf(userId: string, lanes: number): number {
  let h = 5381;
  for (let i = 0; i < userId.length; i++) h = (Math.imul(h, 33) + userId.charCodeAt(i)) >>> 0;
  return h % lanes;
}

/**
 * The rules script alone, as the workers call it (runs of CHARGES_PER_CALL consecutive charges): arguments computed
 * up front, calls pipelined on one connection, a few pipelines in flight.
 */
export async function runCeiling(
  setup: BenchSetup,
  configFile: string,
  input: ChargeEvent[],
  options: { pipelineSize?: number; inFlight?: number; namespace?: string } = {},
): Promise<RunResult> {
  const ctx = createContext(settingsFor(setup, configFile, options.namespace ?? 'bench-ceiling'), setup.redisUrl, silentLogger);
  try {
    const evaluate = defineScript(ctx.redis, evaluateChargesScript);
    const now = Date.now();
    // A call is one shard's (one slot): the events shard by shard, each shard's in order, CHARGES_PER_CALL a call.
    const byShard = ctx.keys.shardIds.map(() => [] as ChargeEvent[]);
    for (const e of input) byShard[ctx.keys.shardOf(e.userId)]!.push(e);
    const events = byShard.flat();
    const calls: { first: number; keys: string[]; args: (string | number)[] }[] = [];
    let first = 0;
    for (const shardEvents of byShard) {
      for (let i = 0; i < shardEvents.length; i += CHARGES_PER_CALL) {
        const slice = shardEvents.slice(i, i + CHARGES_PER_CALL);
        calls.push({ first, ...ctx.rules.scriptCall(slice.map((event) => ({ event, occurredAtMs: Date.parse(event.occurredAt), clockMs: BENCH_CLOCK_MS })), now) });
        first += slice.length;
      }
    }
    // About 3 calls of CHARGES_PER_CALL (600 charges) per pipeline.
    const size = Math.max(1, Math.round((options.pipelineSize ?? 600) / CHARGES_PER_CALL)) * CHARGES_PER_CALL;
    const inFlight = new Set<Promise<unknown>>();
    const sendAt = new Float64Array(events.length);
    const started = await startMeter(ctx.redis, [], decisionStreams(ctx));
    let nextCall = 0;
    await drive(
      events.length,
      null,
      sendAt,
      {
        async send(_from, to) {
          // The calls that start before `to` (drive() sends `size` events at a time).
          const p = new SlotPipeline(ctx.redis);
          for (; nextCall < calls.length && calls[nextCall]!.first < to; nextCall++) {
            const call = calls[nextCall]!;
            p.add(call.keys[0]!, (q) => evaluate(q, call.keys, call.args));
          }
          const done: Promise<unknown> = p.exec().then(() => inFlight.delete(done));
          inFlight.add(done);
          if (inFlight.size >= (options.inFlight ?? 4)) await Promise.race(inFlight);
        },
        async finish() {
          await Promise.all(inFlight);
        },
      },
      size,
    );
    return await finishRun('ceiling', ctx, events, null, sendAt, started, undefined);
  } finally {
    await ctx.close();
  }
}

async function waitForWorkers(queues: Queue[], perQueue: number, failed: Promise<never>): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const counts = await Promise.all(queues.map((q) => q.getWorkersCount()));
    if (counts.every((c) => c >= perQueue)) return;
    if (Date.now() > deadline) throw new Error(`worker processes did not start within 60 s (${counts.join(', ')} connected)`);
    await Promise.race([sleep(100), failed]);
  }
}

/** Plain BullMQ: one job per event (added in bulk), the rules script per job, worker processes with concurrency. */
export async function runBaseline(setup: BenchSetup, configFile: string, events: ChargeEvent[], offered: number | null): Promise<RunResult> {
  const namespace = `bench-baseline-${offered ?? 'max'}`;
  const ctx = createContext(settingsFor(setup, configFile, namespace), setup.redisUrl, silentLogger);
  const queue = new Queue(BASELINE_QUEUE, { connection: ctx.queueConnection, prefix: ctx.keys.queuePrefix(BASELINE_QUEUE) });
  let workers: WorkerProcesses | undefined;
  try {
    workers = startProcesses(
      BASELINE_WORKER_ENTRY,
      setup.baselineWorkers,
      workerEnv(setup, configFile, namespace, { BENCH_BASELINE_CONCURRENCY: String(setup.baselineConcurrency), BENCH_CLOCK_MS: String(BENCH_CLOCK_MS) }),
    );
    await waitForWorkers([queue], setup.baselineWorkers, workers.exited);
    const sendAt = new Float64Array(events.length);
    const started = await startMeter(ctx.redis, workers.pids, decisionStreams(ctx));
    await drive(events.length, offered, sendAt, {
      async send(from, to) {
        for (let i = from; i < to; i += 1_000) {
          const jobs = events.slice(i, Math.min(to, i + 1_000)).map((e) => ({ name: 'charge', data: e, opts: { removeOnComplete: true, removeOnFail: 1_000 } }));
          await queue.addBulk(jobs);
        }
      },
    });
    return await finishRun('baseline', ctx, events, offered, sendAt, started, workers.exited);
  } finally {
    await workers?.stop();
    await queue.close();
    await ctx.close();
  }
}

/** The production path: EventProducer → shard queues → risk-worker processes. */
export async function runRiskmon(setup: BenchSetup, configFile: string, events: ChargeEvent[], offered: number | null, namespace = `bench-riskmon-${offered ?? 'max'}`): Promise<RunResult> {
  const session = await openRiskmon(setup, configFile, namespace);
  try {
    return await session.run(events, offered);
  } finally {
    await session.close();
  }
}

export interface RiskmonSession {
  /** One measured run through the running producer and worker processes. */
  run(events: ChargeEvent[], offered: number | null): Promise<RunResult>;
  close(): Promise<void>;
}

/** The production path kept running between runs (the cost-growth slices: no process start-up or cold JIT in each). */
export async function openRiskmon(setup: BenchSetup, configFile: string, namespace: string): Promise<RiskmonSession> {
  const settings = settingsFor(setup, configFile, namespace);
  const ctx = createContext(settings, setup.redisUrl, silentLogger);
  let workers: WorkerProcesses | undefined;
  let producer: EventProducer | undefined;
  const queues = await openRiskQueues(ctx.queueConnection, ctx.keys, settings.config.pipeline.shards);
  const close = async () => {
    await producer?.close();
    await workers?.stop();
    await Promise.all(queues.map((q) => q.close()));
    await ctx.close();
  };
  try {
    workers = startProcesses(RISK_WORKER_ENTRY, setup.riskWorkers, workerEnv(setup, configFile, namespace));
    await waitForWorkers(queues, setup.riskWorkers, workers.exited);
    producer = await ctx.openProducer({ clock: () => BENCH_CLOCK_MS });
  } catch (e) {
    await close();
    throw e;
  }
  const p = producer;
  const w = workers;
  return {
    async run(events, offered) {
      const sendAt = new Float64Array(events.length);
      const started = await startMeter(ctx.redis, w.pids, decisionStreams(ctx));
      await drive(events.length, offered, sendAt, {
        send(from, to) {
          for (let i = from; i < to; i++) p.send(events[i]!);
        },
        finish: () => p.flush(),
      });
      return await finishRun('riskmon', ctx, events, offered, sendAt, started, w.exited);
    },
    close,
  };
}

export { settingsFor };

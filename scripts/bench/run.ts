/**
 * The whole benchmark in one go, on a private redis-server started here (never the shared one): the same seeded
 * synthetic stream through the reference, ceiling, baseline and riskmon paths, at saturation and at offered loads,
 * then memory, cost growth with the number of users, and the 1,000,000-account calibration when it exists.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { deepMerge, loadSettings, type RiskmonConfig } from '../../src/config.ts';
import { createContext, type Context } from '../../src/context.ts';
import { silentLogger } from '../../src/logger.ts';
import type { ChargeEvent } from '../../src/events/schema.ts';
import { CardHasher } from '../../src/events/card.ts';
import { syntheticCharges, syntheticPan } from '../../src/events/synthetic.ts';
import { PRUNE_EVERY_DAYS } from '../../src/rules/charge-rules.ts';
import { ruleStateFields } from '../../src/rules/rule-state.ts';
import { CARD_FIELD_PREFIX } from '../../src/rules/same-card-burst.ts';
import { Keys } from '../../src/redis/keys.ts';
import { startRedisServer, type LocalRedis } from '../../src/redis/local-server.ts';
import { ZoneCalendar } from '../../src/time/calendar.ts';
import { compareDecisions, type DecisionComparison } from './decisions.ts';
import { openRiskmon, resetRedis, runBaseline, runCeiling, runReference, runRiskmon, writeBenchConfig, type BenchSetup, type RiskmonSession, type RunResult } from './paths.ts';
import { keyGroup, keyMemory, memoryByGroup, parseInfo, type KeyGroup } from './redis-probe.ts';

export interface BenchOptions {
  /** Charges in the main stream. @defaultValue 200000 */
  count: number;
  /** Distinct users in the main stream. @defaultValue 20000 */
  users: number;
  seed: number;
  /** Seconds each offered load runs. @defaultValue 3 */
  duration: number;
  /** Offered loads, events/s. @defaultValue [2000, 5000, 10000, 20000] */
  loads: number[];
  /** Distinct users of the cost-growth runs (same count). @defaultValue [10000, 1000000] */
  scaleUsers: number[];
  riskWorkers: number;
  baselineWorkers: number;
  baselineConcurrency: number;
  /** Events of the stream (its first ones) the baseline runs at saturation: it is slow. @defaultValue 30000 */
  baselineCount: number;
  /** Accounts for the calibration measurement (0 skips it; 1,000,000 for the full goal, about 4 extra minutes). @defaultValue 50000 */
  calibrationAccounts: number;
  skipBaseline: boolean;
  /** Saturation rounds (ceiling, baseline, riskmon interleaved); the best of each path is reported. @defaultValue 2 */
  rounds: number;
  /** Cost-growth rounds: each runs the next slice of every size's stream, the sizes alternating. @defaultValue 4 */
  scaleRounds: number;
  /**
   * Self-check of the decision comparison: the riskmon saturation runs get the stream with one charge's amount
   * changed, so the benchmark must report a difference (and the command exit non-zero). @defaultValue false
   */
  injectDifference: boolean;
  /** Config overrides for every path (pipeline tuning). */
  overrides: Record<string, unknown>;
  log: (line: string) => void;
}

export interface MemoryReport {
  activeUsers: number;
  cards: number;
  userDays: number;
  decisions: number;
  groups: Record<string, KeyGroup>;
  /** Redis memory for keys (MEMORY STATS, without connection buffers) that the rule state accounts for, key tables and TTLs included. */
  ruleStateKeyMemory: number;
  ruleStateBytesPerUserDay: number;
  ruleStateBytesPerUser: number;
  /** Card windows inside the rule-state hashes: how many, and their listpack entry bytes per card (estimated). */
  cardWindows: number;
  cardWindowBytesPerCard: number;
  /** The whole decision (dec:<eventId>, until the archiver drops it), per key. */
  wholeDecisionBytes: number;
  /** The charge record and the eventId claim, per charge (entries of small hashes). */
  chargeRecordBytes: number;
  claimBytes: number;
  decisionStreamBytesPerEntry: number;
  settlementDueBytesPerEntry: number;
}

export interface Comparison {
  run: string;
  comparison: DecisionComparison;
}

export interface CalibrationResult {
  status: 'measured' | 'skipped';
  note: string;
  result?: unknown;
}

export interface ScaleResult extends RunResult {
  distinctUsers: number;
  activeUsers: number;
  /** Events/s of each slice, in order (the run is the sum of its slices). */
  slices: number[];
  /** Keys in Redis when the measured run started (after the load and the warm-up). */
  keysAtStart: number;
  /** The warm-up before it (as many events over the preceding day, rules script alone): it pays for the keyspace growing. */
  warmUp: { eventsPerSecond: number; redisCpuUsPerEvent: number; keysAtStart: number };
}

export interface BenchResult {
  options: Omit<BenchOptions, 'log'> & { retentionDays: number; streamMaxLen: number; pipeline: Record<string, number> };
  machine: Record<string, string | number>;
  redisConfig: Record<string, string>;
  reference: RunResult;
  saturation: RunResult[];
  loads: RunResult[];
  /** Offered loads not run because they are far past the path's saturation throughput. */
  skippedLoads: { path: string; offered: number }[];
  scale: ScaleResult[];
  memory: MemoryReport;
  comparisons: Comparison[];
  calibration: CalibrationResult;
  totalSeconds: number;
}

export const DEFAULT_OPTIONS: Omit<BenchOptions, 'log'> = {
  count: 200_000,
  users: 20_000,
  seed: 42,
  duration: 3,
  loads: [2_000, 5_000, 10_000, 20_000],
  scaleUsers: [10_000, 1_000_000],
  riskWorkers: 1,
  baselineWorkers: 1,
  baselineConcurrency: 100,
  baselineCount: 30_000,
  calibrationAccounts: 50_000,
  skipBaseline: false,
  rounds: 2,
  scaleRounds: 4,
  injectDifference: false,
  overrides: {},
};

const require = createRequire(import.meta.url);
const CALIBRATION_MODULE = fileURLToPath(new URL('../bench-calibration.ts', import.meta.url));

export function stream(options: { count: number; users: number; seed: number; prefix?: string; startMs?: number }): ChargeEvent[] {
  return [...syntheticCharges({ count: options.count, users: options.users, seed: options.seed, prefix: options.prefix ?? 'bench', startMs: options.startMs, spanMs: STREAM_SPAN_MS })];
}

/** Where the synthetic stream starts, and the simulated time it spans (syntheticCharges' defaults). */
const STREAM_START_MS = Date.parse('2026-03-10T00:00:00+08:00');
const STREAM_SPAN_MS = 26 * 3_600_000;

export function machineInfo(): Record<string, string | number> {
  let model = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) model = m[1]!.trim();
  } catch {
    // not Linux
  }
  return {
    cores: cpus().length,
    cpuModel: model,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    bullmq: (require('bullmq/package.json') as { version: string }).version,
    ioredis: (require('ioredis/package.json') as { version: string }).version,
    loadAverageAtStart: loadavg().map((l) => l.toFixed(2)).join(' '),
  };
}

const RULE_STATE = ['ruleState'];

async function deleteKeys(redis: Redis, base: string, which: (key: string) => boolean): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${base}:*`, 'COUNT', 2_000);
    cursor = next;
    const drop = keys.filter(which);
    if (drop.length) await redis.del(...drop);
  } while (cursor !== '0');
}

/**
 * A card window is two entries of its user's rule-state hash ("c:<token>" and its times). In the listpack encoding
 * each entry costs its bytes plus about 2 (encoding header and back-length), so a card costs about name + value + 4.
 */
async function cardWindowBytes(redis: Redis, base: string): Promise<{ cards: number; bytes: number }> {
  let cards = 0;
  let bytes = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${base}:*:u:*:rules`, 'COUNT', 2_000);
    cursor = next;
    const p = redis.pipeline();
    for (const key of keys) p.hgetall(key);
    for (const [, hash] of (await p.exec()) ?? []) {
      for (const [field, value] of Object.entries(hash as Record<string, string>)) {
        if (!field.startsWith(CARD_FIELD_PREFIX)) continue;
        cards++;
        bytes += Buffer.byteLength(field) + Buffer.byteLength(value) + 4;
      }
    }
  } while (cursor !== '0');
  return { cards, bytes };
}

async function measureMemory(redis: Redis, namespace: string, events: ChargeEvent[]): Promise<MemoryReport> {
  const base = new Keys(namespace, 1).base;
  const calendar = new ZoneCalendar(loadSettings({ env: {} }).config.timezone);
  const users = new Set<string>();
  const cards = new Set<string>();
  const userDays = new Set<string>();
  for (const e of events) {
    users.add(e.userId);
    cards.add(`${e.userId}\u0000${e.cardId}`);
    userDays.add(`${e.userId}\u0000${calendar.local(Date.parse(e.occurredAt)).date}`);
  }
  const groups = await memoryByGroup(redis, base);
  const cardWindows = await cardWindowBytes(redis, base);
  // Delete everything but the rule state, then delete the rule state too: the difference is what Redis
  // really holds for it (key dictionaries and TTLs included), whatever else (clients, scripts) the server holds.
  // Read without connection buffers, and after each deletion wait until Redis has shrunk its key tables (on a
  // timer, 10 times a second): otherwise where those fell between the two readings decided a third of the figure.
  await deleteKeys(redis, base, (k) => !RULE_STATE.includes(keyGroup(base, k)));
  const withRuleState = await settledKeyMemory(redis);
  await deleteKeys(redis, base, () => true);
  const ruleStateKeyMemory = withRuleState - (await settledKeyMemory(redis));
  const g = (name: string): KeyGroup => groups[name] ?? { keys: 0, bytes: 0, elements: 0 };
  const ruleBytes = g('ruleState').bytes;
  const decisions = g('decisionStream').elements;
  return {
    activeUsers: users.size,
    cards: cards.size,
    userDays: userDays.size,
    decisions,
    groups,
    ruleStateKeyMemory,
    ruleStateBytesPerUserDay: Math.max(ruleBytes, ruleStateKeyMemory) / userDays.size,
    ruleStateBytesPerUser: Math.max(ruleBytes, ruleStateKeyMemory) / users.size,
    cardWindows: cardWindows.cards,
    cardWindowBytesPerCard: cardWindows.bytes / Math.max(1, cardWindows.cards),
    wholeDecisionBytes: g('wholeDecision').bytes / Math.max(1, g('wholeDecision').keys),
    chargeRecordBytes: g('chargeRecord').bytes / Math.max(1, g('chargeRecord').elements),
    claimBytes: g('claim').bytes / Math.max(1, g('claim').elements),
    decisionStreamBytesPerEntry: g('decisionStream').bytes / Math.max(1, decisions),
    settlementDueBytesPerEntry: g('settlementDue').bytes / Math.max(1, g('settlementDue').elements),
  };
}

/**
 * The calibration benchmark of the quota issue, when its module is present:
 * `benchCalibration({ context, accounts, onProgress })` from scripts/bench-calibration.ts, on a fresh namespace of
 * the benchmark's Redis.
 */
async function measureCalibration(redisUrl: string, cardSecret: string, accounts: number, log: (l: string) => void): Promise<CalibrationResult> {
  if (accounts <= 0) return { status: 'skipped', note: 'skipped (--calibration-accounts 0)' };
  if (!existsSync(CALIBRATION_MODULE)) {
    return { status: 'skipped', note: 'scripts/bench-calibration.ts is not present (quota calibration not merged yet)' };
  }
  // Only a module that exports the entry point is imported (a bare CLI script would run on import).
  if (!/export\s+(async\s+)?function\s+benchCalibration\b|export\s*\{[^}]*\bbenchCalibration\b/.test(readFileSync(CALIBRATION_MODULE, 'utf8'))) {
    return { status: 'skipped', note: 'scripts/bench-calibration.ts does not export benchCalibration' };
  }
  const mod = (await import(pathToFileURL(CALIBRATION_MODULE).href)) as {
    benchCalibration: (o: { context: Context; accounts: number; onProgress?: (message: string) => void }) => Promise<unknown>;
  };
  const context = createContext(loadSettings({ namespace: 'bench-calibration', env: { RISKMON_CARD_SECRET: cardSecret } }), redisUrl, silentLogger);
  try {
    const result = await mod.benchCalibration({ context, accounts, onProgress: (m) => log(`  ${m}`) });
    return { status: 'measured', note: `${accounts} accounts`, result };
  } finally {
    await context.close();
  }
}

export async function runBenchmark(options: BenchOptions): Promise<BenchResult> {
  const { log } = options;
  const t0 = performance.now();
  const machine = machineInfo();
  const server = await startRedisServer({ args: REDIS_ARGS });
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  const workDir = mkdtempSync(join(tmpdir(), 'riskmon-bench-'));
  try {
    const info = parseInfo(await redis.info('server'));
    machine.redis = info.redis_version ?? 'unknown';
    const redisConfig = Object.fromEntries(
      ['appendonly', 'save', 'maxmemory-policy', 'io-threads'].map((k) => [k, '']),
    );
    for (const k of Object.keys(redisConfig)) {
      const [, v] = (await redis.config('GET', k)) as [string, string];
      redisConfig[k] = v ?? '';
    }
    const overrides = deepMerge(
      { retention: { decisionStreamMaxLen: Math.max(1_000_000, 2 * Math.max(options.count, options.duration * Math.max(0, ...options.loads))) } },
      options.overrides,
    ) as Record<string, unknown>;
    const setup: BenchSetup = {
      redisUrl: server.url,
      workDir,
      overrides,
      cardSecret: 'riskmon-benchmark-card-secret-0123456789',
      riskWorkers: options.riskWorkers,
      baselineWorkers: options.baselineWorkers,
      baselineConcurrency: options.baselineConcurrency,
      log,
    };
    const configFile = writeBenchConfig(setup);
    const { config } = loadSettings({ configFile, env: {} });
    const pipeline = { ...config.pipeline };

    log(`generating ${options.count} charges over ${options.users} users (seed ${options.seed})`);
    const events = stream(options);
    await resetRedis(redis);

    const comparisons: Comparison[] = [];
    const check = (run: string, r: RunResult, ref: Map<string, string>, subset?: ChargeEvent[]) => {
      const comparison = compareDecisions(ref, r.decisions.bodies, (subset ?? events).map((e) => e.eventId));
      comparisons.push({ run, comparison });
      log(`  decisions vs one-at-a-time: ${comparison.identical ? 'identical' : 'DIFFERENT'} (${comparison.compared})`);
    };
    const done = (r: RunResult) => {
      log(
        `  ${r.path} ${r.offered ?? 'max'}: ${Math.round(r.eventsPerSecond)} events/s, p50/p95/p99 ${r.latencyMs.p50}/${r.latencyMs.p95}/${r.latencyMs.p99} ms, ` +
          `Redis ${r.redisCpuUsPerEvent.toFixed(1)} µs/event, others ${r.otherBusyCores.toFixed(2)} cores`,
      );
      // The decisions are kept for comparison only; drop the bulk once compared.
      return r;
    };

    log('reference: one event at a time through the processor');
    const reference = done(await runReference(setup, configFile, events));
    const ref = reference.decisions.bodies;
    await resetRedis(redis);

    const saturation: RunResult[] = [];
    let memory: MemoryReport | undefined;
    const keepBest = (r: RunResult) => {
      const i = saturation.findIndex((x) => x.path === r.path);
      if (i < 0) saturation.push(slim(r));
      else if (r.eventsPerSecond > saturation[i]!.eventsPerSecond) saturation[i] = slim(r);
    };
    for (let round = 1; round <= options.rounds; round++) {
      log(`saturation round ${round} of ${options.rounds}`);
      log('ceiling: the rules script alone, pipelined');
      const ceiling = done(await runCeiling(setup, configFile, events));
      check(`ceiling (round ${round})`, ceiling, ref);
      keepBest(ceiling);
      await resetRedis(redis);

      if (!options.skipBaseline) {
        log(`baseline: plain BullMQ, one job per event (${options.baselineWorkers} process × concurrency ${options.baselineConcurrency})`);
        const subset = events.slice(0, options.baselineCount);
        const baseline = done(await runBaseline(setup, configFile, subset, null));
        check(`baseline (round ${round})`, baseline, ref, subset);
        keepBest(baseline);
        await resetRedis(redis);
      }

      log(`riskmon: producer → ${pipeline.shards} shard queues (batches ≤ ${pipeline.maxBatch}, linger ${pipeline.lingerMs} ms) → ${options.riskWorkers} worker process(es)`);
      const riskmon = done(await runRiskmon(setup, configFile, options.injectDifference ? withOneDifference(events) : events, null));
      check(`riskmon (round ${round})`, riskmon, ref);
      keepBest(riskmon);
      if (!memory) {
        memory = await measureMemory(redis, 'bench-riskmon-max', events);
        log(`  rule state ${memory.ruleStateBytesPerUserDay.toFixed(0)} B per user-day, charge record ${memory.chargeRecordBytes.toFixed(0)} B, claim ${memory.claimBytes.toFixed(0)} B`);
      }
      await resetRedis(redis);
    }

    const loads: RunResult[] = [];
    const skippedLoads: { path: string; offered: number }[] = [];
    for (const rate of options.loads) {
      const subset = events.slice(0, Math.min(events.length, Math.round(rate * options.duration)));
      const baselineMax = saturation.find((r) => r.path === 'baseline')?.eventsPerSecond ?? Infinity;
      if (!options.skipBaseline && rate > 1.5 * baselineMax) {
        // Far past what it can take: the run would only measure a growing queue (the saturation row says it).
        log(`baseline at ${rate} events/s offered: skipped, above 1.5 × its saturation throughput`);
        skippedLoads.push({ path: 'baseline', offered: rate });
      } else if (!options.skipBaseline) {
        log(`baseline at ${rate} events/s offered (${subset.length} events)`);
        loads.push(slim(done(await runBaseline(setup, configFile, subset, rate))));
        await resetRedis(redis);
      }
      log(`riskmon at ${rate} events/s offered (${subset.length} events)`);
      const r = done(await runRiskmon(setup, configFile, subset, rate));
      check(`riskmon @ ${rate}/s`, r, ref, subset);
      loads.push(slim(r));
      await resetRedis(redis);
    }

    const scale = options.scaleUsers.length ? await measureScale(options, setup, configFile, config) : [];

    log('calibration');
    const calibration = await measureCalibration(server.url, setup.cardSecret, options.calibrationAccounts, log);
    log(`  ${calibration.note}`);

    const { log: _log, ...rest } = options;
    machine.loadAverageAtEnd = loadavg().map((l) => l.toFixed(2)).join(' ');
    return {
      options: { ...rest, overrides, retentionDays: config.retention.decisionDays, streamMaxLen: config.retention.decisionStreamMaxLen, pipeline },
      machine,
      redisConfig,
      reference: slim(reference),
      saturation,
      loads,
      skippedLoads,
      scale,
      memory: memory!,
      comparisons,
      calibration,
      totalSeconds: (performance.now() - t0) / 1000,
    };
  } finally {
    redis.disconnect();
    await server.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** Like production, but on a private server: AOF off (persistence cost is not what this measures), noeviction. */
// DEBUG HTSTATS (local connections only) tells when a key-table rehash is over.
export const REDIS_ARGS = ['--maxmemory-policy', 'noeviction', '--appendonly', 'no', '--save', '', '--enable-debug-command', 'local'];

/**
 * Cost growth with the number of users. Each size gets its own private Redis: every user's state is loaded, then a
 * warm-up of as many events over the preceding day runs through the rules script. Redis doubles its key table when
 * the key count crosses a power of two (1,000,000 users + 200,000 decisions crosses 2^20) and rehashes every key
 * during the commands that follow; that cost comes with the keyspace growing, not with each event, so the warm-up
 * pays it and reports it apart. Then the measured stream runs through the production path in slices, the sizes
 * alternating (10k, 1M, 10k, 1M, ...): a minute of interference from other tenants falls on both sizes, where
 * whole runs one after the other differed by 15–20% on a quiet machine.
 */
async function measureScale(options: BenchOptions, setup: BenchSetup, configFile: string, config: RiskmonConfig): Promise<ScaleResult[]> {
  const { log } = options;
  // Everything opened is registered at once, so a failure anywhere still stops every process and server.
  const servers: LocalRedis[] = [];
  const clients: Redis[] = [];
  const sessions: RiskmonSession[] = [];
  const sizes: { users: number; redis: Redis; session: RiskmonSession; events: ChargeEvent[]; keysAtStart: number; warmUp: ScaleResult['warmUp']; slices: RunResult[] }[] = [];
  try {
    for (const users of options.scaleUsers) {
      const server = await startRedisServer({ args: REDIS_ARGS });
      servers.push(server);
      const redis = new Redis(server.url, { maxRetriesPerRequest: null });
      clients.push(redis);
      const sizeSetup = { ...setup, redisUrl: server.url };
      const namespace = `bench-users-${users}`;
      await preloadUsers(redis, new Keys(namespace, config.pipeline.shards), new CardHasher(setup.cardSecret), users, config);
      const warmUpKeys = await redis.dbsize();
      // The measured run must not cross a power of two of keys (a table doubling) for any size: the warm-up goes
      // past the one it would cross (about one key per event), and Redis finishes rehashing before measuring.
      const warmUpCount = warmUpEvents(warmUpKeys, options.count, options.count);
      log(`cost growth, ${users} users: state of every user loaded, then a warm-up of ${warmUpCount} events`);
      const warm = stream({ count: warmUpCount, users, seed: options.seed + 1, prefix: `w${users}`, startMs: STREAM_START_MS - STREAM_SPAN_MS });
      // Most of it through the rules script alone (the quickest way to the state), the last events through the
      // production path, which warms the worker processes up for the measured slices.
      const viaPath = Math.min(WARM_UP_VIA_PATH, Math.floor(warm.length / 2));
      const w = await runCeiling(sizeSetup, configFile, warm.slice(0, warm.length - viaPath), { namespace });
      log(`  warm-up: ${Math.round(w.eventsPerSecond)} events/s, Redis ${w.redisCpuUsPerEvent.toFixed(1)} µs/event (from ${warmUpKeys} keys)`);
      const session = await openRiskmon(sizeSetup, configFile, namespace);
      sessions.push(session);
      await session.run(warm.slice(warm.length - viaPath), null);
      await waitForRehash(redis);
      const keysAtStart = await redis.dbsize();
      if (2 ** Math.ceil(Math.log2(keysAtStart + 1)) <= keysAtStart + options.count + KEY_SLACK) {
        log(`  note: the measured run crosses a key-table doubling (${keysAtStart} keys + ${options.count} events)`);
      }
      sizes.push({
        users,
        redis,
        session,
        events: stream({ count: options.count, users, seed: options.seed, prefix: `u${users}` }),
        keysAtStart,
        warmUp: { eventsPerSecond: w.eventsPerSecond, redisCpuUsPerEvent: w.redisCpuUsPerEvent, keysAtStart: warmUpKeys },
        slices: [],
      });
    }
    const rounds = options.scaleRounds;
    for (let k = 0; k < rounds; k++) {
      for (const size of sizes) {
        const n = size.events.length;
        const slice = size.events.slice(Math.floor((k * n) / rounds), Math.floor(((k + 1) * n) / rounds));
        const r = slim(await size.session.run(slice, null));
        size.slices.push(r);
        log(`  ${size.users} users, slice ${k + 1} of ${rounds}: ${Math.round(r.eventsPerSecond)} events/s, Redis ${r.redisCpuUsPerEvent.toFixed(1)} µs/event`);
      }
    }
    return sizes.map((size) => ({
      ...combineSlices(size.slices),
      distinctUsers: size.users,
      activeUsers: new Set(size.events.map((e) => e.userId)).size,
      slices: size.slices.map((r) => r.eventsPerSecond),
      keysAtStart: size.keysAtStart,
      warmUp: size.warmUp,
    }));
  } finally {
    await Promise.allSettled(sessions.map((s) => s.close()));
    for (const c of clients) c.disconnect();
    await Promise.allSettled(servers.map((s) => s.stop()));
  }
}

/**
 * Warm-up events for a keyspace of `keys`: `base`, or more when `keys + base` and the measured run's `measured`
 * more would cross a power of two (Redis doubles its key table there): then enough to pass it by 1,000.
 */
export function warmUpEvents(keys: number, base: number, measured: number): number {
  const after = keys + base;
  const nextDoubling = 2 ** Math.ceil(Math.log2(after + 1));
  return after + measured + KEY_SLACK >= nextDoubling ? nextDoubling - keys + KEY_SLACK : base;
}
/** Keys a run adds besides one decision per event (queues, stream, schedule), rounded up. */
const KEY_SLACK = 1_000;

/** Waits (up to 60 s) until Redis has finished rehashing its key tables, which it does 1 ms per 100 ms when idle. */
async function waitForRehash(redis: Redis): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const stats = String(await redis.call('DEBUG', 'HTSTATS', '0'));
    if (!stats.includes('rehashing target')) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('Redis was still rehashing its key tables after 60 s');
}

/** Warm-up events that go through the production path, after the rest went through the rules script. */
const WARM_UP_VIA_PATH = 20_000;

/** Slices of one run as one: events and seconds add up, CPU per event is weighted by events, latency is the worst slice's. */
function combineSlices(slices: RunResult[]): RunResult {
  const events = slices.reduce((a, r) => a + r.events, 0);
  const seconds = slices.reduce((a, r) => a + r.seconds, 0);
  const perEvent = (f: (r: RunResult) => number) => slices.reduce((a, r) => a + f(r) * r.events, 0) / events;
  const perSecond = (f: (r: RunResult) => number) => slices.reduce((a, r) => a + f(r) * r.seconds, 0) / seconds;
  const worst = slices.reduce((a, r) => (r.latencyMs.p99 > a.latencyMs.p99 ? r : a));
  return {
    ...worst,
    events,
    seconds,
    eventsPerSecond: events / seconds,
    redisCpuUsPerEvent: perEvent((r) => r.redisCpuUsPerEvent),
    clientCpuUsPerEvent: perEvent((r) => r.clientCpuUsPerEvent),
    workerCpuUsPerEvent: perEvent((r) => r.workerCpuUsPerEvent),
    machineBusyCores: perSecond((r) => r.machineBusyCores),
    otherBusyCores: perSecond((r) => r.otherBusyCores),
  };
}

/**
 * Gives every user of a scale run the state an earlier day leaves behind (a day total and a card window holding an
 * old charge, in the user's rule-state hash, with its TTL), so the keyspace holds all of them, not only those the
 * stream happens to reach. The old entries are outside every window of the measured stream and on another day.
 * Written by a small script, 5,000 users a call (a million users by separate HSET and EXPIRE commands took half a
 * minute of the run); the first user's hash is read back and checked against ruleStateFields.
 */
export async function preloadUsers(redis: Redis, keys: Keys, cards: CardHasher, users: number, config: RiskmonConfig): Promise<void> {
  const start = STREAM_START_MS;
  const dayBefore = '2026-03-09';
  const dayTtl = (config.retention.dayTotalsDays + PRUNE_EVERY_DAYS) * 86_400;
  const stateOf = (u: number) =>
    ruleStateFields({
      days: new Map([[dayBefore, 10_000]]),
      cards: new Map([[cards.token(syntheticPan(u, 0)), [start - 86_400_000]]]),
      prunedOn: dayBefore,
    });
  // Every user's hash is these fields plus their own card window.
  const sample = stateOf(0);
  const cardField = Object.keys(sample).find((f) => f.startsWith(CARD_FIELD_PREFIX))!;
  const window = sample[cardField]!;
  const common = Object.entries(sample).filter(([f]) => f !== cardField).flat();
  const calls: Promise<unknown>[] = [];
  for (let from = 0; from < users; from += PRELOAD_CHUNK) {
    const chunk = Array.from({ length: Math.min(PRELOAD_CHUNK, users - from) }, (_, i) => from + i);
    const stateKeys = chunk.map((u) => keys.ruleState(`u-${u}`));
    const cardFields = chunk.map((u) => CARD_FIELD_PREFIX + cards.token(syntheticPan(u, 0)));
    calls.push(redis.eval(PRELOAD_SCRIPT, stateKeys.length, ...stateKeys, dayTtl, window, common.length / 2, ...common, ...cardFields));
    if (calls.length >= 4) await calls.shift();
  }
  await Promise.all(calls);
  if (users > 0) {
    const expected = stateOf(0);
    const actual = await redis.hgetall(keys.ruleState('u-0'));
    if (JSON.stringify(Object.entries(actual).sort()) !== JSON.stringify(Object.entries(expected).sort()) || (await redis.ttl(keys.ruleState('u-0'))) <= 0) {
      throw new Error(`preloaded state differs from ruleStateFields: ${JSON.stringify(actual)} vs ${JSON.stringify(expected)}`);
    }
  }
}

const PRELOAD_CHUNK = 5_000;
/** KEYS: rule-state hashes; ARGV: TTL, card window, k, k common field/value pairs, then one card field per key. */
const PRELOAD_SCRIPT = `
local ttl, window, k = ARGV[1], ARGV[2], tonumber(ARGV[3])
local fields = {}
for i = 1, 2 * k do fields[i] = ARGV[3 + i] end
local first = 4 + 2 * k
for u = 1, #KEYS do
  fields[2 * k + 1] = ARGV[first + u - 1]
  fields[2 * k + 2] = window
  redis.call("HSET", KEYS[u], unpack(fields))
  redis.call("EXPIRE", KEYS[u], ttl)
end
return #KEYS`;

/** Memory held for keys once two readings 300 ms apart agree within 0.5% (at most about 3 s). */
async function settledKeyMemory(redis: Redis): Promise<number> {
  let last = await keyMemory(redis);
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 300));
    const now = await keyMemory(redis);
    if (Math.abs(now - last) <= last * 0.005) return now;
    last = now;
  }
  return last;
}

/** The stream with the amount of its middle charge raised by one fen. */
function withOneDifference(events: ChargeEvent[]): ChargeEvent[] {
  const copy = events.slice();
  const i = Math.floor(copy.length / 2);
  copy[i] = { ...copy[i]!, amount: copy[i]!.amount + 1 };
  return copy;
}

/** Keeps the numbers, drops the per-event maps (hundreds of MB over a whole run). */
function slim(r: RunResult): RunResult {
  return { ...r, decisions: { bodies: new Map(), decidedAtMs: new Map(), firstMs: r.decisions.firstMs, lastMs: r.decisions.lastMs } };
}


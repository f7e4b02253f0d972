/**
 * Calibration benchmark: writes N credit accounts with varied activity straight into Redis (pipelined, no event
 * pipeline), then times one calibration run of all of them through the real chunk jobs and workers.
 *
 *   npm run bench:calibration -- [--accounts 1000000] [--concurrency 4] [--chunk-size 1000] [--redis-url URL]
 *
 * Without --redis-url it starts a private redis-server (so a million accounts never land in a shared Redis) and
 * stops it afterwards. `benchCalibration` is exported for `npm run bench`.
 */
import { DAY_COUNT_PREFIX } from '../src/quota/credit-account.ts';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import type { ChainableCommander } from 'ioredis';
import { loadSettings } from '../src/config.ts';
import { createContext, type Context } from '../src/context.ts';
import { runCommand, wholeNumberOption } from '../src/cli.ts';
import { silentLogger } from '../src/logger.ts';
import { startCalibrationWorkerFor } from '../src/quota/calibration-worker.ts';
import type { RunStatus } from '../src/quota/runs.ts';
import { startRedisServer } from '../src/redis/local-server.ts';
import { DAY_MS } from '../src/time/calendar.ts';

export interface CalibrationBenchOptions {
  /** A context on a namespace with no accounts yet (its config sets chunk size and concurrency). */
  context: Context;
  /** Accounts to create and calibrate. @defaultValue 100000 */
  accounts?: number;
  /** Run date. @defaultValue "2026-03-15" */
  date?: string;
  /** Chunk jobs at a time in this process. @defaultValue config.calibration.concurrency */
  concurrency?: number;
  /** Called now and then with what is happening. */
  onProgress?: (message: string) => void;
}

export interface CalibrationBenchResult {
  accounts: number;
  chunkSize: number;
  chunks: number;
  concurrency: number;
  /** Writing the accounts and their activity. */
  seedSeconds: number;
  /** Starting the run: fixing its account set (one ZRANGESTORE) and adding the chunk jobs. */
  startSeconds: number;
  /** From start to the last chunk done. */
  calibrateSeconds: number;
  accountsPerSecond: number;
  run: RunStatus;
  redisUsedMemoryMb: number;
}

const SEED_PIPELINE = 2_000;

/** Seeds one account: a mix of profiles so every factor and the warning fire for some accounts. */
function seedAccount(p: ChainableCommander, ctx: Context, i: number, runAtMs: number): void {
  const k = ctx.keys;
  const userId = `bench-${i}`;
  const openedAt = runAtMs - (20 + (i % 40)) * DAY_MS;
  const invited = i % 2 === 0;
  p.hset(k.account(userId), {
    channel: invited ? 'invited' : 'applied',
    quota: invited ? 1_000_000 : 500_000,
    openedAt,
    openedAtIso: new Date(openedAt).toISOString(),
    openEventId: `bench-open-${i}`,
    openDate: ctx.calendar.local(openedAt).date,
    owed: 0,
    seq: 0,
  });
  // Charges: frequent users (4 a day over the last 20 days), occasional ones, and idle ones.
  const profile = i % 4;
  if (profile !== 3) {
    // The charge counts credit_limit keeps in the account (src/quota/credit-account.ts).
    const days: Record<string, number> = {};
    for (let d = 1; d <= 20; d++) {
      if (profile === 0 || d % 7 === 0) days[DAY_COUNT_PREFIX + ctx.calendar.local(runAtMs - d * DAY_MS).date] = profile === 0 ? 4 : 1;
    }
    if (Object.keys(days).length) p.hset(k.account(userId), days);
  }
  if (i % 3 === 0) p.zadd(k.repayments(userId), runAtMs - 5 * DAY_MS, JSON.stringify([`bench-r-${i}`, 50_000, i % 30 === 0 ? 0 : 1, runAtMs - 4 * DAY_MS]));
  if (i % 5 === 0) {
    p.zadd(k.assetSnapshots(userId), runAtMs - 3 * DAY_MS, JSON.stringify([`bench-a-${i}`, i % 10 === 0 ? 6_000_000 : 100_000, i % 25 === 0 ? 900_000 : 0]));
  }
  if (i % 7 === 0) p.zadd(k.socialSnapshots(userId), runAtMs - 2 * DAY_MS, JSON.stringify([`bench-s-${i}`, 60, i % 14 === 0 ? 1 : 0]));
}

export async function benchCalibration(options: CalibrationBenchOptions): Promise<CalibrationBenchResult> {
  const { context } = options;
  const accounts = options.accounts ?? 100_000;
  const date = options.date ?? '2026-03-15';
  const config = context.settings.config;
  const concurrency = options.concurrency ?? config.calibration.concurrency;
  const progress = options.onProgress ?? (() => undefined);
  const run = context.calibrator.run(date);
  const k = context.keys;
  const indexed = await Promise.all(k.shardIds.map((s) => context.redis.zcard(k.accountIndex(s))));
  if (indexed.some((n) => n > 0)) throw new Error(`namespace ${context.keys.namespace} already has accounts: use a fresh one`);

  const seedStart = performance.now();
  for (let first = 0; first < accounts; first += SEED_PIPELINE) {
    const p = context.redis.pipeline();
    for (let i = first; i < Math.min(accounts, first + SEED_PIPELINE); i++) {
      seedAccount(p, context, i, run.atMs);
      p.zadd(k.accountIndex(k.shardOf(`bench-${i}`)), run.atMs - (20 + (i % 40)) * DAY_MS, `bench-${i}`);
    }
    await p.exec();
    if ((first / SEED_PIPELINE) % 50 === 0) progress(`seeded ${first} accounts`);
  }
  const seedSeconds = (performance.now() - seedStart) / 1000;
  progress(`seeded ${accounts} accounts in ${seedSeconds.toFixed(1)} s`);

  const worker = await startCalibrationWorkerFor(context, concurrency);
  try {
    const started = performance.now();
    const status = await context.calibration.start(date);
    const startSeconds = (performance.now() - started) / 1000;
    progress(`run ${date}: ${status.accounts} accounts in ${status.chunks} chunks (started in ${startSeconds.toFixed(2)} s)`);
    let lastReport = 0;
    const done = await context.calibration.waitUntilDone(date, {
      pollMs: 200,
      onProgress: (s) => {
        if (performance.now() - lastReport > 5_000) {
          lastReport = performance.now();
          progress(`calibrated ${s.calibrated} of ${s.accounts}`);
        }
      },
    });
    const calibrateSeconds = (performance.now() - started) / 1000;
    const info = await context.redis.info('memory');
    const used = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
    return {
      accounts,
      chunkSize: config.calibration.chunkSize,
      chunks: done.chunks,
      concurrency,
      seedSeconds,
      startSeconds,
      calibrateSeconds,
      accountsPerSecond: Math.round(done.calibrated / calibrateSeconds),
      run: done,
      redisUsedMemoryMb: Math.round(used / 1_048_576),
    };
  } finally {
    await worker.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  runCommand(
    {
      name: 'bench:calibration',
      summary: 'Loads N quota accounts into a Redis and times one full calibration run over them (the goal: 1,000,000 accounts in under 10 minutes).',
      usage: ['[options]'],
      options: {
        accounts: { type: 'string', arg: 'N', default: '1000000', help: 'accounts to calibrate' },
        concurrency: { type: 'string', arg: 'N', default: '4', help: 'chunk jobs at once' },
        'chunk-size': { type: 'string', arg: 'N', default: '1000', help: 'accounts per chunk job' },
        'redis-url': { type: 'string', arg: '<url>', help: 'a Redis to use (default: a private redis-server)' },
      },
      examples: ['npm run bench:calibration -- --accounts 50000'],
    },
    async ({ values }) => {
    const accounts = wholeNumberOption('accounts', values.accounts, 1_000_000);
    const concurrency = wholeNumberOption('concurrency', values.concurrency, 4);
    const chunkSize = wholeNumberOption('chunk-size', values['chunk-size'], 1_000);
    const local = values['redis-url'] ? undefined : await startRedisServer();
    const url = values['redis-url'] ?? local!.url;
    const settings = loadSettings({
      namespace: `bench-cal-${Date.now().toString(36)}`,
      overrides: { calibration: { chunkSize: Math.min(chunkSize, 100_000), concurrency: Math.min(concurrency, 64) } },
    });
    const context = createContext(settings, url, silentLogger);
    try {
      const result = await benchCalibration({ context, accounts, concurrency, onProgress: (m) => process.stderr.write(`bench: ${m}\n`) });
      const cpu = cpus()[0]?.model ?? 'unknown CPU';
      process.stdout.write(
        JSON.stringify({ ...result, machine: `${cpus().length} × ${cpu}`, node: process.version, redis: local ? 'private redis-server' : url }, null, 2) + '\n',
      );
    } finally {
      await context.close();
      await local?.stop();
    }
  });
}

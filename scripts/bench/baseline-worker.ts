/**
 * The benchmark's plain-BullMQ baseline worker: one job per event, the same rules script per job (a run of one
 * charge), concurrency
 * BENCH_BASELINE_CONCURRENCY. Not part of the product; it shows what the straightforward design costs.
 * Config from the environment like a service process (REDIS_URL, RISKMON_CONFIG, RISKMON_NAMESPACE).
 */
import { Worker } from 'bullmq';
import { loadSettings } from '../../src/config.ts';
import { createContext } from '../../src/context.ts';
import { parseEvent } from '../../src/events/schema.ts';
import { createLogger } from '../../src/logger.ts';
import { defineScript } from '../../src/redis/scripts.ts';
import { evaluateChargesScript, parseChargeReply } from '../../src/rules/charge-rules.ts';
import { BASELINE_QUEUE } from './paths.ts';

const settings = loadSettings();
if (!settings.redisUrl) throw new Error('REDIS_URL is required');
const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn' });
const ctx = createContext(settings, settings.redisUrl, logger);
const evaluate = defineScript(ctx.redis, evaluateChargesScript);
// The benchmark's producer clock (scripts/bench/paths.ts BENCH_CLOCK_MS).
const clockMs = Number(process.env.BENCH_CLOCK_MS);
if (!Number.isFinite(clockMs)) throw new Error('BENCH_CLOCK_MS is required');

const worker = new Worker(
  BASELINE_QUEUE,
  async (job) => {
    const parsed = parseEvent(job.data);
    if (!parsed.ok) throw new Error(parsed.reason);
    const { event, occurredAtMs } = parsed;
    if (event.type !== 'charge') throw new Error(`baseline handles charges only, got ${event.type}`);
    const { keys, args } = ctx.rules.scriptCall([{ event, occurredAtMs, clockMs }], Date.now());
    const [reply] = (await evaluate(ctx.redis, keys, args)) as string[];
    const charge = parseChargeReply(reply ?? '', ctx.rules.recordGenerationAt(occurredAtMs));
    if (charge.kind === 'error') throw new Error(charge.message);
  },
  {
    connection: ctx.queueConnection,
    prefix: ctx.keys.queuePrefix(BASELINE_QUEUE),
    concurrency: Number(process.env.BENCH_BASELINE_CONCURRENCY ?? 50),
  },
);
worker.on('error', (err) => logger.error({ err: err.message }, 'baseline worker error'));

const stop = async () => {
  await worker.close();
  await ctx.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());

/**
 * npm run bench [-- --count 200000 --users 20000 --duration 3 --rounds 2 --out docs/benchmarks-run.md]
 *
 * Runs the same seeded synthetic stream through the rules script alone (ceiling), plain BullMQ with one job per
 * event (baseline) and the production path (riskmon) on a private redis-server, and prints throughput, latency at
 * offered loads, Redis CPU and memory, cost growth with the number of users, and whether every decision equals
 * the one-event-at-a-time path. Exits 1 when the riskmon or ceiling decisions differ from it.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runCli, UsageError } from '../src/cli.ts';
import { renderReport } from './bench/report.ts';
import { DEFAULT_OPTIONS, runBenchmark, type BenchOptions } from './bench/run.ts';

const USAGE =
  'npm run bench -- [--count N] [--users N] [--seed N] [--duration S] [--loads 2000,5000,10000,20000|none] ' +
  '[--scale-users 10000,1000000|none] [--rounds N] [--scale-rounds N] [--workers N] [--baseline-workers N] [--baseline-concurrency N] [--baseline-count N] ' +
  '[--no-baseline] [--calibration-accounts N] [--shards N] [--max-batch N] [--linger-ms N] [--busy-linger-ms N] [--out report.md] [--json result.json] ' +
  '[--inject-difference]';

function positiveInt(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} takes a whole number ≥ ${min}, got ${JSON.stringify(value)}`);
  return n;
}

function list(name: string, value: string | undefined, fallback: number[]): number[] {
  if (value === undefined) return fallback;
  if (value === 'none' || value === '') return [];
  return value.split(',').map((v) => positiveInt(name, v.trim(), 0));
}

runCli(
  'bench',
  async () => {
    const { values } = parseArgs({
      options: {
        count: { type: 'string' },
        users: { type: 'string' },
        seed: { type: 'string' },
        duration: { type: 'string' },
        loads: { type: 'string' },
        'scale-users': { type: 'string' },
        rounds: { type: 'string' },
        'scale-rounds': { type: 'string' },
        workers: { type: 'string' },
        'baseline-workers': { type: 'string' },
        'baseline-concurrency': { type: 'string' },
        'baseline-count': { type: 'string' },
        'no-baseline': { type: 'boolean', default: false },
        'calibration-accounts': { type: 'string' },
        shards: { type: 'string' },
        'max-batch': { type: 'string' },
        'linger-ms': { type: 'string' },
        'busy-linger-ms': { type: 'string' },
        out: { type: 'string' },
        json: { type: 'string' },
        'inject-difference': { type: 'boolean', default: false },
      },
    });
    const d = DEFAULT_OPTIONS;
    const pipeline: Record<string, number> = {};
    if (values.shards !== undefined) pipeline.shards = positiveInt('shards', values.shards, 0);
    if (values['max-batch'] !== undefined) pipeline.maxBatch = positiveInt('max-batch', values['max-batch'], 0);
    if (values['linger-ms'] !== undefined) pipeline.lingerMs = positiveInt('linger-ms', values['linger-ms'], 0, 0);
    if (values['busy-linger-ms'] !== undefined) pipeline.busyLingerMs = positiveInt('busy-linger-ms', values['busy-linger-ms'], 0, 0);
    const started = performance.now();
    const options: BenchOptions = {
      count: positiveInt('count', values.count, d.count),
      users: positiveInt('users', values.users, d.users),
      seed: positiveInt('seed', values.seed, d.seed, 0),
      duration: positiveInt('duration', values.duration, d.duration),
      loads: list('loads', values.loads, d.loads),
      scaleUsers: list('scale-users', values['scale-users'], d.scaleUsers),
      rounds: positiveInt('rounds', values.rounds, d.rounds),
      scaleRounds: positiveInt('scale-rounds', values['scale-rounds'], d.scaleRounds),
      riskWorkers: positiveInt('workers', values.workers, d.riskWorkers),
      baselineWorkers: positiveInt('baseline-workers', values['baseline-workers'], d.baselineWorkers),
      baselineConcurrency: positiveInt('baseline-concurrency', values['baseline-concurrency'], d.baselineConcurrency),
      baselineCount: positiveInt('baseline-count', values['baseline-count'], d.baselineCount),
      calibrationAccounts: positiveInt('calibration-accounts', values['calibration-accounts'], d.calibrationAccounts, 0),
      skipBaseline: values['no-baseline'],
      injectDifference: values['inject-difference'],
      overrides: Object.keys(pipeline).length ? { pipeline } : {},
      // Elapsed m:ss on every line: the default run is meant to stay under 5 minutes.
      log: (line) => {
        const s = Math.floor((performance.now() - started) / 1000);
        process.stderr.write(`bench ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}: ${line}\n`);
      },
    };
    if (options.scaleRounds > options.count) throw new UsageError(`--scale-rounds ${options.scaleRounds} is more than --count ${options.count}: a slice would be empty`);
    const result = await runBenchmark(options);
    const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim();
    const report = renderReport(result);
    const machine = Object.entries(result.machine).map(([k, v]) => `${k}: ${v}`).join('; ');
    const text = `## Benchmark run\n\nCommand: \`${command}\`\n\nMachine: ${machine}\n\nTotal time: ${Math.round(result.totalSeconds)} s\n\n${report}\n`;
    process.stdout.write(text);
    if (values.out) writeFileSync(values.out, text);
    if (values.json) writeFileSync(values.json, JSON.stringify(result, (_k, v) => (v instanceof Map ? undefined : v), 2));
    const failed = result.comparisons.filter((c) => !c.comparison.identical && !c.run.startsWith('baseline'));
    if (failed.length) {
      throw new Error(`decisions differ from the one-event-at-a-time path in: ${failed.map((c) => c.run).join(', ')}`);
    }
  },
  USAGE,
);

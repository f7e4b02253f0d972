/**
 * npm run bench [-- --count 200000 --users 20000 --duration 3 --rounds 2 --out docs/benchmarks-run.md]
 *
 * Runs the same seeded synthetic stream through the rules script alone (ceiling), plain BullMQ with one job per
 * event (baseline) and the production path (riskmon) on a private redis-server, and prints throughput, latency at
 * offered loads, Redis CPU and memory, cost growth with the number of users, and whether every decision equals
 * the one-event-at-a-time path. Exits 1 when the riskmon or ceiling decisions differ from it.
 */
import { writeFileSync } from 'node:fs';
import { runCommand, UsageError, wholeNumberOption } from '../src/cli.ts';
import { renderReport } from './bench/report.ts';
import { DEFAULT_OPTIONS, runBenchmark, type BenchOptions } from './bench/run.ts';


function list(name: string, value: string | undefined, fallback: number[]): number[] {
  if (value === undefined) return fallback;
  if (value === 'none' || value === '') return [];
  return value.split(',').map((v) => wholeNumberOption(name, v.trim(), 0));
}

const d = DEFAULT_OPTIONS;

runCommand(
  {
    name: 'bench',
    summary:
      'Runs one seeded synthetic stream through the rules script alone (ceiling), plain BullMQ with one job per event (baseline) and the production path (riskmon) on a private redis-server; prints throughput, latency at offered loads, CPU, memory and cost growth with the number of users, and exits 1 when a decision differs from the one-event-at-a-time path.',
    usage: ['[options]'],
    options: {
      count: { type: 'string', arg: 'N', help: `charges in the main stream (default ${d.count})` },
      users: { type: 'string', arg: 'N', help: `distinct users in it (default ${d.users})` },
      seed: { type: 'string', arg: 'N', help: `the stream's seed (default ${d.seed})` },
      duration: { type: 'string', arg: 'S', help: `seconds per offered load (default ${d.duration})` },
      loads: { type: 'string', arg: 'N,N,…|none', help: `offered loads in events/s (default ${d.loads.join(',')})` },
      'scale-users': { type: 'string', arg: 'N,N|none', help: `stream sizes of the cost-growth measurement (default ${d.scaleUsers.join(',')})` },
      rounds: { type: 'string', arg: 'N', help: `saturation runs per path, best kept (default ${d.rounds})` },
      'scale-rounds': { type: 'string', arg: 'N', help: `alternating slices per cost-growth size (default ${d.scaleRounds})` },
      workers: { type: 'string', arg: 'N', help: `riskmon worker processes (default ${d.riskWorkers})` },
      'baseline-workers': { type: 'string', arg: 'N', help: `baseline worker processes (default ${d.baselineWorkers})` },
      'baseline-concurrency': { type: 'string', arg: 'N', help: `jobs at once per baseline worker (default ${d.baselineConcurrency})` },
      'baseline-count': { type: 'string', arg: 'N', help: `events of the baseline's saturation runs (default ${d.baselineCount})` },
      'no-baseline': { type: 'boolean', help: 'skip the baseline (its ratio is then not reported)' },
      'calibration-accounts': { type: 'string', arg: 'N', help: `accounts of the quota-calibration measurement, 0 to skip (default ${d.calibrationAccounts})` },
      shards: { type: 'string', arg: 'N', help: 'pipeline.shards for this run' },
      'max-batch': { type: 'string', arg: 'N', help: 'pipeline.maxBatch for this run' },
      'linger-ms': { type: 'string', arg: 'N', help: 'pipeline.lingerMs for this run' },
      'busy-linger-ms': { type: 'string', arg: 'N', help: 'pipeline.busyLingerMs for this run' },
      out: { type: 'string', arg: '<report.md>', help: 'also write the report to this file' },
      json: { type: 'string', arg: '<result.json>', help: 'write every figure as JSON to this file' },
      'inject-difference': { type: 'boolean', help: 'change one decision on purpose (shows that the comparison can fail)' },
    },
    notes: ['About 2½ minutes with the defaults on 2 cores. BENCH_WORKER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the worker processes.'],
    examples: ['npm run bench', 'npm run bench -- --no-baseline --loads 10000 --scale-users none --rounds 1'],
  },
  async ({ values }) => {
    const pipeline: Record<string, number> = {};
    if (values.shards !== undefined) pipeline.shards = wholeNumberOption('shards', values.shards, 0);
    if (values['max-batch'] !== undefined) pipeline.maxBatch = wholeNumberOption('max-batch', values['max-batch'], 0);
    if (values['linger-ms'] !== undefined) pipeline.lingerMs = wholeNumberOption('linger-ms', values['linger-ms'], 0, { min: 0 });
    if (values['busy-linger-ms'] !== undefined) pipeline.busyLingerMs = wholeNumberOption('busy-linger-ms', values['busy-linger-ms'], 0, { min: 0 });
    const started = performance.now();
    const options: BenchOptions = {
      count: wholeNumberOption('count', values.count, d.count),
      users: wholeNumberOption('users', values.users, d.users),
      seed: wholeNumberOption('seed', values.seed, d.seed, { min: 0 }),
      duration: wholeNumberOption('duration', values.duration, d.duration),
      loads: list('loads', values.loads, d.loads),
      scaleUsers: list('scale-users', values['scale-users'], d.scaleUsers),
      rounds: wholeNumberOption('rounds', values.rounds, d.rounds),
      scaleRounds: wholeNumberOption('scale-rounds', values['scale-rounds'], d.scaleRounds),
      riskWorkers: wholeNumberOption('workers', values.workers, d.riskWorkers),
      baselineWorkers: wholeNumberOption('baseline-workers', values['baseline-workers'], d.baselineWorkers),
      baselineConcurrency: wholeNumberOption('baseline-concurrency', values['baseline-concurrency'], d.baselineConcurrency),
      baselineCount: wholeNumberOption('baseline-count', values['baseline-count'], d.baselineCount),
      calibrationAccounts: wholeNumberOption('calibration-accounts', values['calibration-accounts'], d.calibrationAccounts, { min: 0 }),
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
);

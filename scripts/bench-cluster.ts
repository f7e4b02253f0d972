/**
 * npm run bench:cluster [-- --count 100000 --users 20000 --workers 2 --shards 16 --rounds 2 --out <report.md>]
 *
 * The same seeded stream on one private redis-server and on a private Redis Cluster of 3 masters without
 * replicas, all on this machine, through the rules script alone (ceiling) and the production path (producer →
 * shard queues → worker processes): events/s, Redis CPU µs per charge summed over the masters (and per master),
 * and key memory per charge. Exits 1 when a decision differs between the two, or the cluster's Redis CPU per charge
 * is more than 15% above one Redis's.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChargeEvent } from '../src/events/schema.ts';
import { runCommand, wholeNumberOption } from '../src/cli.ts';
import { masterNodes, type RedisClient } from '../src/redis/client.ts';
import { createRedis } from '../src/redis/connection.ts';
import { startCluster } from '../src/redis/local-cluster.ts';
import { startRedisServer } from '../src/redis/local-server.ts';
import { parseClusterSeeds, type RedisTarget } from '../src/redis/target.ts';
import { compareDecisions } from './bench/decisions.ts';
import { resetRedis, runCeiling, runRiskmon, writeBenchConfig, type BenchSetup, type RunResult } from './bench/paths.ts';
import { keyMemory, parseInfo } from './bench/redis-probe.ts';
import { machineInfo, REDIS_ARGS, stream } from './bench/run.ts';

interface Measured {
  target: 'one Redis' | '3-master cluster';
  ceiling: RunResult;
  riskmon: RunResult;
  /** Redis CPU µs per charge of the production path, per master. */
  perMasterUs: number[];
  /** The same summed over the masters, split into Redis's user and system CPU time. */
  userSysUs: [number, number];
  keyBytesPerCharge: number;
}

async function measure(kind: Measured['target'], target: RedisTarget, client: RedisClient, events: ChargeEvent[], options: { workers: number; shards: number; rounds: number }, log: (l: string) => void): Promise<Measured> {
  const workDir = mkdtempSync(join(tmpdir(), 'riskmon-bench-cluster-'));
  try {
    const setup: BenchSetup = {
      redisUrl: target,
      workDir,
      overrides: { pipeline: { shards: options.shards }, retention: { decisionStreamMaxLen: 2 * events.length } },
      cardSecret: 'riskmon-benchmark-card-secret-0123456789',
      riskWorkers: options.workers,
      baselineWorkers: 0,
      baselineConcurrency: 0,
      log,
    };
    const configFile = writeBenchConfig(setup);
    let ceiling: RunResult | undefined;
    let riskmon: RunResult | undefined;
    let perMasterUs: number[] = [];
    let userSysUs: [number, number] = [0, 0];
    let keyBytesPerCharge = 0;
    for (let round = 1; round <= options.rounds; round++) {
      await resetRedis(client);
      const c = await runCeiling(setup, configFile, events, { namespace: `bench-ceiling-${round}` });
      log(`  ${kind} ceiling ${round}: ${Math.round(c.eventsPerSecond)} events/s, Redis ${c.redisCpuUsPerEvent.toFixed(1)} µs/charge`);
      if (!ceiling || c.eventsPerSecond > ceiling.eventsPerSecond) ceiling = c;
      await resetRedis(client);
      const before = await Promise.all(masterNodes(client).map(cpuSeconds));
      const r = await runRiskmon(setup, configFile, events, null, `bench-riskmon-${round}`);
      const after = await Promise.all(masterNodes(client).map(cpuSeconds));
      log(`  ${kind} riskmon ${round}: ${Math.round(r.eventsPerSecond)} events/s, Redis ${r.redisCpuUsPerEvent.toFixed(1)} µs/charge, p99 ${r.latencyMs.p99} ms`);
      if (!riskmon || r.redisCpuUsPerEvent < riskmon.redisCpuUsPerEvent) {
        riskmon = r;
        perMasterUs = after.map((a, i) => ((a.user + a.sys - before[i]!.user - before[i]!.sys) * 1e6) / events.length);
        const sum = (k: 'user' | 'sys') => (after.reduce((t, a, i) => t + a[k] - before[i]![k], 0) * 1e6) / events.length;
        userSysUs = [sum('user'), sum('sys')];
        keyBytesPerCharge = (await Promise.all(masterNodes(client).map(keyMemory))).reduce((a, b) => a + b, 0) / events.length;
      }
    }
    return { target: kind, ceiling: ceiling!, riskmon: riskmon!, perMasterUs, userSysUs, keyBytesPerCharge };
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** The commands that cost most on either target, per charge. */
function topCommands(one: Measured, many: Measured, charges: number): string[] {
  const byName = (m: Measured) => new Map(m.riskmon.topCommands.map((c) => [c.command, c]));
  const a = byName(one);
  const b = byName(many);
  const names = [...new Set([...a.keys(), ...b.keys()])].sort((x, y) => Math.max(b.get(y)?.usec ?? 0, a.get(y)?.usec ?? 0) - Math.max(b.get(x)?.usec ?? 0, a.get(x)?.usec ?? 0));
  const cell = (c: { calls: number; usec: number } | undefined) => (c ? `${(c.calls / charges).toFixed(3)} | ${(c.usec / charges).toFixed(2)}` : '0 | 0');
  return names.slice(0, 10).map((n) => `| ${n} | ${cell(a.get(n))} | ${cell(b.get(n))} |`);
}

async function cpuSeconds(node: import('ioredis').Redis): Promise<{ user: number; sys: number }> {
  const info = parseInfo(await node.info('cpu'));
  return { user: Number(info.used_cpu_user), sys: Number(info.used_cpu_sys) };
}

runCommand(
  {
    name: 'bench:cluster',
    summary:
      'Runs one seeded stream on a private redis-server and on a private 3-master Redis Cluster (no replicas) on this machine: events/s and Redis CPU µs per charge summed over the masters, ceiling and production path; exits 1 when decisions differ or the cluster costs Redis more than 15% more CPU per charge.',
    usage: ['[options]'],
    options: {
      count: { type: 'string', arg: 'N', help: 'charges in the stream (default 100000)' },
      users: { type: 'string', arg: 'N', help: 'distinct users (default 20000)' },
      workers: { type: 'string', arg: 'N', help: 'riskmon worker processes (default 2)' },
      shards: { type: 'string', arg: 'N', help: 'pipeline.shards, for both (default 16: slots spread over the masters)' },
      rounds: { type: 'string', arg: 'N', help: 'runs per target and path, best kept (default 2)' },
      out: { type: 'string', arg: '<report.md>', help: 'also write the report to this file' },
    },
    notes: ['About a minute with the defaults on 2 cores. Every process shares the machine: events/s compare only within one run.'],
    examples: ['npm run bench:cluster', 'npm run bench:cluster -- --count 20000 --rounds 1'],
  },
  async ({ values }) => {
    const started = performance.now();
    const log = (line: string) => process.stderr.write(`bench:cluster ${Math.round((performance.now() - started) / 1000)} s: ${line}\n`);
    const options = {
      count: wholeNumberOption('count', values.count, 100_000),
      users: wholeNumberOption('users', values.users, 20_000),
      workers: wholeNumberOption('workers', values.workers, 2),
      shards: wholeNumberOption('shards', values.shards, 16),
      rounds: wholeNumberOption('rounds', values.rounds, 2),
    };
    const machine = machineInfo();
    const events = stream({ count: options.count, users: options.users, seed: 42 });
    log(`${options.count} charges over ${options.users} users, ${options.shards} shards, ${options.workers} worker processes`);

    const server = await startRedisServer({ args: REDIS_ARGS });
    const single = createRedis(server.url);
    let one: Measured;
    try {
      one = await measure('one Redis', { kind: 'single', url: server.url }, single, events, options, log);
    } finally {
      single.disconnect();
      await server.stop();
    }
    const cluster = await startCluster({ masters: 3, replicasPerMaster: 0, extraArgs: REDIS_ARGS.filter((a) => a !== '--enable-debug-command' && a !== 'local') });
    const target = parseClusterSeeds(cluster.seeds);
    const client = createRedis(target);
    let many: Measured;
    try {
      await client.ping();
      many = await measure('3-master cluster', target, client, events, options, log);
    } finally {
      client.disconnect();
      await cluster.stop();
    }

    const comparison = compareDecisions(one.riskmon.decisions.bodies, many.riskmon.decisions.bodies, events.map((e) => e.eventId));
    const ratio = many.riskmon.redisCpuUsPerEvent / one.riskmon.redisCpuUsPerEvent;
    const row = (m: Measured) =>
      `| ${m.target} | ${Math.round(m.ceiling.eventsPerSecond).toLocaleString('en-US')} | ${m.ceiling.redisCpuUsPerEvent.toFixed(1)} | ` +
      `${Math.round(m.riskmon.eventsPerSecond).toLocaleString('en-US')} | ${m.riskmon.redisCpuUsPerEvent.toFixed(1)} | ${m.userSysUs.map((u) => u.toFixed(1)).join(' / ')} | ${m.perMasterUs.map((u) => u.toFixed(1)).join(' / ')} | ` +
      `${m.riskmon.latencyMs.p99} | ${Math.round(m.keyBytesPerCharge)} |`;
    const text = [
      '## Cluster benchmark run',
      '',
      `Command: \`npm run bench:cluster -- ${process.argv.slice(2).join(' ')}\``.replace(' -- `', '`'),
      '',
      `Machine: ${Object.entries(machine).map(([k, v]) => `${k}: ${v}`).join('; ')}`,
      '',
      `${options.count} charges, ${options.users} users, ${options.shards} shards, ${options.workers} worker processes; best of ${options.rounds}.`,
      '',
      '| Redis | ceiling events/s | ceiling Redis µs/charge | riskmon events/s | riskmon Redis µs/charge (all masters) | user / system (whole run, start-up included) | per master | p99 ms | key bytes/charge |',
      '|---|---|---|---|---|---|---|---|---|',
      row(one),
      row(many),
      '',
      `Redis CPU per charge, cluster / one Redis: ${ratio.toFixed(2)} (goal ≤ 1.15). Decisions: ${comparison.identical ? 'identical' : 'DIFFERENT'} (${comparison.compared} compared).`,
      '',
      'Where the production path spends Redis time (commandstats over the masters, per charge: calls, µs):',
      '',
      '| command | one Redis calls | µs | cluster calls | µs |',
      '|---|---|---|---|---|',
      ...topCommands(one, many, events.length),
      '',
    ].join('\n');
    process.stdout.write(text);
    if (values.out) writeFileSync(values.out, text);
    if (!comparison.identical) throw new Error('decisions differ between one Redis and the cluster');
    if (ratio > 1.15) throw new Error(`the cluster costs Redis ${ratio.toFixed(2)}× the CPU per charge of one Redis (goal ≤ 1.15)`);
  },
);

/**
 * npm run bench:acks [-- --count 50000 --flush-every 100,1000,5000 --rounds 3 --out <report.md>]
 *
 * What pipeline.replicaAcks costs the producer: the same stream sent with a flush() every N events, with replicaAcks
 * 0 (acknowledged by the master) and 1 (acknowledged once a replica has it, Redis WAIT), on a private master with one
 * replica and on a private Redis Cluster of 3 masters with one replica each, all on this machine. Reports events/s
 * and flush() latency (best of the rounds, which alternate the two settings after a warm-up run). The producer alone: no worker decides (their Redis work is the same either way).
 */
import { writeFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { runCommand, wholeNumberOption } from '../src/cli.ts';
import { loadSettings } from '../src/config.ts';
import { createContext } from '../src/context.ts';
import { silentLogger } from '../src/logger.ts';
import { startCluster } from '../src/redis/local-cluster.ts';
import { startRedisServer } from '../src/redis/local-server.ts';
import { parseClusterSeeds, type RedisTarget } from '../src/redis/target.ts';
import { BENCH_CLOCK_MS } from './bench/paths.ts';
import { machineInfo, REDIS_ARGS, stream } from './bench/run.ts';
import type { ChargeEvent } from '../src/events/schema.ts';

interface Row {
  target: string;
  flushEvery: number;
  replicaAcks: number;
  eventsPerSecond: number;
  flushP50Ms: number;
  flushP99Ms: number;
}

const SERVER_ARGS = REDIS_ARGS.filter((a) => a !== '--enable-debug-command' && a !== 'local');

async function produce(target: string | RedisTarget, events: ChargeEvent[], flushEvery: number, replicaAcks: number, namespace: string): Promise<Omit<Row, 'target'>> {
  const settings = loadSettings({
    namespace,
    overrides: { pipeline: { shards: 16, replicaAcks, replicaAckTimeoutMs: 5_000 }, retention: { decisionStreamMaxLen: 2 * events.length } },
    env: { RISKMON_CARD_SECRET: 'riskmon-benchmark-card-secret-0123456789' },
  });
  const ctx = createContext(settings, target, silentLogger);
  try {
    const producer = await ctx.openProducer({ clock: () => BENCH_CLOCK_MS });
    const flushMs: number[] = [];
    const started = performance.now();
    for (let i = 0; i < events.length; i++) {
      producer.send(events[i]!);
      if ((i + 1) % flushEvery === 0 || i === events.length - 1) {
        const at = performance.now();
        await producer.flush();
        flushMs.push(performance.now() - at);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    await producer.close();
    if (producer.accepted !== events.length) throw new Error(`${events.length - producer.accepted} events were refused`);
    flushMs.sort((a, b) => a - b);
    const at = (q: number) => Math.round(flushMs[Math.min(flushMs.length - 1, Math.floor(q * flushMs.length))]! * 100) / 100;
    return { flushEvery, replicaAcks, eventsPerSecond: events.length / seconds, flushP50Ms: at(0.5), flushP99Ms: at(0.99) };
  } finally {
    await ctx.close();
  }
}

runCommand(
  {
    name: 'bench:acks',
    summary:
      'Measures what pipeline.replicaAcks costs the producer: events/s and flush() latency with replicaAcks 0 and 1, flushing every N events, on a private master with a replica and on a private 3-master cluster with a replica each.',
    usage: ['[options]'],
    options: {
      count: { type: 'string', arg: 'N', help: 'charges sent per run (default 50000)' },
      'flush-every': { type: 'string', arg: 'N[,N…]', help: 'events between flushes (default 100,1000,5000)' },
      rounds: { type: 'string', arg: 'N', help: 'runs per setting, best kept (default 3)' },
      out: { type: 'string', arg: '<report.md>', help: 'also write the report to this file' },
    },
    notes: ['About three minutes with the defaults on 2 cores. Every process shares the machine: compare within one run.'],
    examples: ['npm run bench:acks', 'npm run bench:acks -- --count 10000 --flush-every 500'],
  },
  async ({ values }) => {
    const count = wholeNumberOption('count', values.count, 50_000);
    const flushEvery = (values['flush-every'] ?? '100,1000,5000').split(',').map((v) => wholeNumberOption('flush-every', v.trim(), 1_000));
    const log = (line: string) => process.stderr.write(`bench:acks: ${line}\n`);
    const events = stream({ count, users: 20_000, seed: 42 });
    const rows: Row[] = [];
    const rounds = wholeNumberOption('rounds', values.rounds, 3);
    const runAll = async (targetName: string, target: string | RedisTarget) => {
      await produce(target, events, 1_000, 0, `benchacks${targetName.length}warm`); // JIT and connections warm
      for (const every of flushEvery) {
        const best = new Map<number, Omit<Row, 'target'>>();
        for (let round = 1; round <= rounds; round++) {
          for (const acks of round % 2 ? [0, 1] : [1, 0]) {
            const r = await produce(target, events, every, acks, `benchacks${rows.length}r${round}a${acks}`);
            log(`${targetName}, flush every ${every}, replicaAcks ${acks}, round ${round}: ${Math.round(r.eventsPerSecond)} events/s, flush p50 ${r.flushP50Ms} ms, p99 ${r.flushP99Ms} ms`);
            if (r.eventsPerSecond > (best.get(acks)?.eventsPerSecond ?? 0)) best.set(acks, r);
          }
        }
        for (const acks of [0, 1]) rows.push({ target: targetName, ...best.get(acks)! });
      }
    };

    const master = await startRedisServer({ args: SERVER_ARGS });
    const replica = await startRedisServer({ args: [...SERVER_ARGS, '--replicaof', '127.0.0.1', String(master.port)] });
    try {
      const probe = new Redis(master.url);
      for (let i = 0; i < 100 && !/slave0:.*state=online/.test(await probe.info('replication')); i++) await new Promise((r) => setTimeout(r, 100));
      probe.disconnect();
      await runAll('one master + replica', master.url);
    } finally {
      await replica.stop();
      await master.stop();
    }
    const cluster = await startCluster({ masters: 3, replicasPerMaster: 1, extraArgs: SERVER_ARGS });
    try {
      await runAll('3 masters + replicas', parseClusterSeeds(cluster.seeds));
    } finally {
      await cluster.stop();
    }

    const machine = machineInfo();
    const base = new Map(rows.filter((r) => r.replicaAcks === 0).map((r) => [`${r.target}/${r.flushEvery}`, r.eventsPerSecond]));
    const text = [
      '## Replica acknowledgement cost',
      '',
      `Command: \`npm run bench:acks -- ${process.argv.slice(2).join(' ')}\``.replace(' -- `', '`'),
      '',
      `Machine: ${Object.entries(machine).map(([k, v]) => `${k}: ${v}`).join('; ')}`,
      '',
      `${count} charges per run, 16 shards, the producer alone (no workers), replication over loopback; best of ${rounds} rounds.`,
      '',
      '| Redis | flush every | replicaAcks | events/s | vs replicaAcks 0 | flush p50 ms | flush p99 ms |',
      '|---|---|---|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.target} | ${r.flushEvery.toLocaleString('en-US')} | ${r.replicaAcks} | ${Math.round(r.eventsPerSecond).toLocaleString('en-US')} | ` +
          `${(r.eventsPerSecond / base.get(`${r.target}/${r.flushEvery}`)!).toFixed(2)} | ${r.flushP50Ms} | ${r.flushP99Ms} |`,
      ),
      '',
    ].join('\n');
    process.stdout.write(text);
    if (values.out) writeFileSync(values.out, text);
  },
);

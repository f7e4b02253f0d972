/**
 * npm run demo [-- --count N --rate R --namespace demo]
 * Starts the service in this process, feeds it a synthetic charge stream, and prints each decision with its
 * reasons as it is made: the quickest way to see riskmon work.
 */
import { checkNamespace, loadSettings } from '../src/config.ts';
import { runCommand, wholeNumberOption } from '../src/cli.ts';
import { parseDecision } from '../src/decisions/decision.ts';
import { syntheticCharges } from '../src/events/synthetic.ts';
import { createLogger } from '../src/logger.ts';
import { createPacer } from '../src/pacing.ts';
import { EventProducer } from '../src/pipeline/producer.ts';
import { startService } from '../src/service.ts';
import { describeTarget } from '../src/redis/target.ts';
import { archiveBacklog } from '../src/archive/archiver.ts';

/** The demo's consumer group on the decision streams (destroyed at the end: a group nobody reads holds trimming back). */
const PRINTER = 'demo-printer';

runCommand(
  {
    name: 'demo',
    summary: 'Starts the service in this process, feeds it a synthetic charge stream and prints each decision with its reasons as it is made: the quickest way to see riskmon work.',
    usage: ['[options]'],
    options: {
      count: { type: 'string', arg: 'N', default: '300', help: 'charges to send' },
      rate: { type: 'string', arg: 'N', default: '50', help: 'charges per second' },
      users: { type: 'string', arg: 'N', default: '40', help: 'distinct users' },
      namespace: { type: 'string', arg: '<name>', help: 'the namespace to work in (default: a fresh demo-… one)' },
    },
    notes: ['Uses REDIS_URL, else 127.0.0.1:6379, else a private redis-server it starts and stops.'],
    examples: ['npm run demo', 'npm run demo -- --count 1000 --rate 200'],
  },
  async ({ values }) => {
  const count = wholeNumberOption('count', values.count, 300);
  const rate = wholeNumberOption('rate', values.rate, 50);
  const users = wholeNumberOption('users', values.users, 40);
  const settings = loadSettings({ namespace: checkNamespace(values.namespace ?? `demo-${Date.now().toString(36)}`) });
  const service = await startService({ components: ['risk', 'settlement', 'archive'], settings, logger: createLogger({ level: 'warn' }) });
  const { context } = service;
  let refused = 0;
  // The live producer's clock is the wall clock (contract v1.1): what it refuses is printed with its reason.
  const producer = await context.openProducer({
    onRejected: (r) => {
      refused++;
      process.stdout.write(`refused ${r.eventId}: ${r.reason}\n`);
    },
  });
  const reader = context.redis.duplicate();
  const tally: Record<string, number> = {};
  let seen = 0;
  process.stdout.write(`riskmon demo: ${count} synthetic charges at ${rate}/s into namespace ${context.keys.namespace} (Redis ${describeTarget(context.redisTarget)})\n\n`);

  const streams = context.keys.shardIds.map((s) => context.keys.decisionStream(s));
  for (const key of streams) {
    await reader.xgroup('CREATE', key, PRINTER, '0', 'MKSTREAM').catch((e: Error) => {
      if (!e.message.startsWith('BUSYGROUP')) throw e;
    });
  }
  const printing = (async () => {
    // Each shard has its stream (its slot): read them in turn, resting when none had anything new. Through a
    // consumer group of its own, so the archiver (which trims what every group is done with) leaves them here.
    while (seen + refused < count) {
      let read = 0;
      for (const key of streams) {
        const res = (await reader.xreadgroup('GROUP', PRINTER, 'demo', 'COUNT', 500, 'STREAMS', key, '>')) as [string, [string, string[]][]][] | null;
        const entries = res?.[0]?.[1] ?? [];
        read += entries.length;
        if (entries.length > 0) await reader.xack(key, PRINTER, ...entries.map(([id]) => id));
        for (const [, fields] of entries) {
          const d = parseDecision(fields[1]!);
          seen++;
          tally[d.outcome] = (tally[d.outcome] ?? 0) + 1;
          const yuan = (d.amount / 100).toFixed(2).padStart(10);
          const line = `${d.outcome.padEnd(7)} ${d.eventId.padEnd(9)} ${d.userId.padEnd(5)} ${d.card} ¥${yuan}  ${d.observed.localDate} ${d.observed.localTime}  settle ${d.settleAt ?? '—'}`;
          process.stdout.write(line + '\n');
          for (const reason of d.reasons) process.stdout.write(`          ↳ ${reason}\n`);
        }
      }
      if (read === 0) await new Promise((r) => setTimeout(r, 100));
    }
  })();

  const pacer = createPacer(rate);
  // The feed covers the last day and a bit (two nights), ending a few hours before now: every charge is inside the
  // producer's window, nothing is ahead of its clock.
  const startMs = Date.now() - 30 * 3_600_000;
  for (const event of syntheticCharges({ count, users, seed: Date.now() % 100_000, prefix: context.keys.namespace, startMs })) {
    producer.send(event);
    await pacer.wait(1, () => producer.flush());
  }
  await producer.flush();
  await printing;
  const stats = await context.ledger.stats();
  process.stdout.write(
    `\n${seen} decisions${refused ? ` (${refused} refused)` : ''}: ${Object.entries(tally).map(([k, v]) => `${k} ${v}`).join(', ')}; ` +
      `scheduled for settlement ${stats.scheduledCount} (¥${(stats.scheduledAmount / 100).toFixed(2)}), held ${stats.heldCount} (¥${(stats.heldAmount / 100).toFixed(2)})\n` +
      `Inspect: npm run settlement -- pending --namespace ${context.keys.namespace}\n`,
  );
  const cases = await context.cases.counts(Date.now());
  process.stdout.write(
    `Review cases waiting for a person: ${cases.open} (each holds its settlement; decide them at /console with a token of npm run users -- add <name> --role analyst, on a running service: npm start)\n`,
  );
  for (const key of streams) await reader.xgroup('DESTROY', key, PRINTER);
  // The archive catches up within a second or two (the embedded database opens in a few seconds the first time).
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && (!service.archive || (await archiveBacklog(context.redis, context.keys)).some((b) => b.entries > 0))) {
    await new Promise((r) => setTimeout(r, 200));
  }
  if (service.archive) {
    const archived = await service.archive.query<{ n: number }>('SELECT count(*)::int AS n FROM fenfu.transactions WHERE namespace = $1', [context.keys.namespace]);
    process.stdout.write(`Archived ${archived.rows[0]!.n} decisions into ${service.archive.description}: npm run archive -- status --namespace ${context.keys.namespace}\n`);
  } else {
    process.stdout.write('Not archived: the archive is not open (see the warning above)\n');
  }
  await producer.close();
  reader.disconnect();
  await service.close();
});

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
  const service = await startService({ components: ['risk', 'settlement'], settings, logger: createLogger({ level: 'warn' }) });
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

  const printing = (async () => {
    // Each shard has its stream (its slot): read them in turn, resting when none had anything new.
    const streams = context.keys.shardIds.map((s) => ({ key: context.keys.decisionStream(s), lastId: '0' }));
    while (seen + refused < count) {
      let read = 0;
      for (const stream of streams) {
        const res = (await reader.xread('COUNT', 500, 'STREAMS', stream.key, stream.lastId)) as [string, [string, string[]][]][] | null;
        const entries = res?.[0]?.[1] ?? [];
        read += entries.length;
        for (const [id, fields] of entries) {
          stream.lastId = id;
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
  await producer.close();
  reader.disconnect();
  await service.close();
});

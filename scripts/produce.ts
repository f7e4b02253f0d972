/**
 * npm run produce -- --file events.ndjson [--rate N]
 * npm run produce -- --synthetic [--rate 2000] [--count 100000] [--users 10000] [--seed 42]
 * Pushes events into the live pipeline (the namespace's shard queues; a running service decides them), paced to
 * --rate events per second, with a progress bar on a terminal and a summary at the end. Needs a running Redis:
 * it fails at once with a clear message when none answers (it never starts a private one, which no worker would see).
 */
import { existsSync } from 'node:fs';
import { checkNamespace, loadSettings } from '../src/config.ts';
import { CONFIG_OPTION, NAMESPACE_OPTION, runCommand, UsageError, wholeNumberOption } from '../src/cli.ts';
import { CardHasher } from '../src/events/card.ts';
import { DeadLetters } from '../src/deadletter/dead-letters.ts';
import { countLines, feed, type FeedSource } from '../src/pipeline/feed.ts';
import { progressDisplay, PROGRESS_NOTE } from '../src/progress.ts';
import { assertReachable, createRedis } from '../src/redis/connection.ts';
import { describeTarget } from '../src/redis/target.ts';
import { Keys } from '../src/redis/keys.ts';
import { checkLayout } from '../src/redis/layout.ts';
import { DEFAULT_REDIS_URL } from '../src/redis/local-server.ts';

runCommand(
  {
    name: 'produce',
    summary: "Pushes events into the live pipeline (the namespace's shard queues; a running service decides them), paced, with a progress bar on a terminal and a summary at the end.",
    usage: ['--file <events.ndjson> [options]', '--synthetic [--count N] [--users N] [--seed N] [options]'],
    options: {
      file: { type: 'string', arg: '<events.ndjson>', help: 'send the lines of this file, in order (malformed lines are dead-lettered with their reasons)' },
      synthetic: { type: 'boolean', help: 'send a seeded synthetic charge stream instead' },
      rate: { type: 'string', arg: 'N', help: 'events per second (default: 2000 with --synthetic; a file as fast as the queues take it)' },
      count: { type: 'string', arg: 'N', default: '100000', help: 'synthetic: charges to send' },
      users: { type: 'string', arg: 'N', default: '10000', help: 'synthetic: distinct users' },
      seed: { type: 'string', arg: 'N', default: '42', help: 'synthetic: the seed' },
      namespace: NAMESPACE_OPTION,
      config: CONFIG_OPTION,
      json: { type: 'boolean', help: 'print the summary as one JSON object' },
    },
    notes: ['Needs a running Redis (REDIS_URL, else 127.0.0.1:6379): it fails at once when none answers, and never starts a private one, which no worker would see.', PROGRESS_NOTE],
    examples: ['npm run produce -- --synthetic --rate 2000 --count 20000', 'npm run produce -- --file test/fixtures/rule-edges.ndjson'],
  },
  async ({ values }) => {
    if (Boolean(values.file) === values.synthetic) throw new UsageError('give either --file <events.ndjson> or --synthetic');
    // A file goes as fast as Redis takes it unless a rate is given; the synthetic feed defaults to 2000/s.
    const rate = wholeNumberOption('rate', values.rate, values.synthetic ? 2_000 : 0, { min: 0 });
    let source: FeedSource;
    if (values.file) {
      if (!existsSync(values.file)) throw new UsageError(`input file not found: ${values.file}`);
      source = { kind: 'file', path: values.file };
    } else {
      source = {
        kind: 'synthetic',
        count: wholeNumberOption('count', values.count, 100_000),
        users: wholeNumberOption('users', values.users, 10_000),
        seed: wholeNumberOption('seed', values.seed, 42, { min: 0 }),
      };
    }
    const settings = loadSettings({ configFile: values.config, namespace: values.namespace && checkNamespace(values.namespace) });
    const { config } = settings;
    const url = settings.redisCluster ?? settings.redisUrl ?? DEFAULT_REDIS_URL;
    const redis = createRedis(url, { failFast: true, name: 'riskmon-producer' });
    // Without a listener ioredis prints every failed reconnect; the error is reported once below.
    redis.on('error', () => undefined);
    try {
      await assertReachable(redis, url);
      const keys = new Keys(config.namespace, config.pipeline.shards, config.retention.chargeRecordHashesPerShard);
      // Events go to the shard of their user: with another count than the workers', to the wrong queue.
      await checkLayout(redis, keys);
      const total = source.kind === 'synthetic' ? source.count : await countLines(source.path);
      const show = progressDisplay({ label: 'produce', total, counted: 'read', fields: ['sent', 'rejected'], quiet: values.json });
      process.stderr.write(
        `produce: ${source.kind === 'file' ? source.path : `${total} synthetic charges`} → namespace ${config.namespace} ` +
          `(Redis ${describeTarget(url)}) at ${rate > 0 ? `${rate}/s` : 'full speed'}\n`,
      );
      let summary;
      try {
        summary = await feed({
          source,
          rate,
          connection: redis,
          keys,
          config,
          cards: new CardHasher(settings.cardSecret),
          deadLetters: new DeadLetters(redis, keys, config.retention.deadLetterMaxLen),
          onProgress: (p) => show.update(p.read, { sent: p.sent, rejected: p.rejected }),
          progressEveryMs: show.everyMs,
        });
      } finally {
        show.stop();
      }
      if (values.json) {
        process.stdout.write(JSON.stringify({ namespace: config.namespace, ...summary }) + '\n');
        return;
      }
      const lines = [
        `sent      ${summary.sent} events to namespace ${config.namespace}`,
        `rejected  ${summary.rejected} at the edge (dead-lettered; see npm run dead-letter -- list --namespace ${config.namespace})`,
        ...summary.rejectReasons.slice(0, 5).map((r) => `            ${String(r.count).padStart(6)} × ${r.reason}`),
        ...(summary.rejectReasons.length > 5 ? [`            … and ${summary.rejectReasons.length - 5} other reasons`] : []),
        `elapsed   ${(summary.elapsedMs / 1000).toFixed(1)} s (${summary.rate} events/s)`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    } finally {
      redis.disconnect();
    }
  },
);

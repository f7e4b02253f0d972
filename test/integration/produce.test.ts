/** The producer against real Redis: synthetic and file feeds, edge rejections, pacing, and Redis being down. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import type { BatchJobData } from '../../src/pipeline/batch-job.ts';
import { Metrics } from '../../src/metrics.ts';
import { feed } from '../../src/pipeline/feed.ts';
import { freePort } from '../../src/redis/local-server.ts';
import { riskQueueName } from '../../src/redis/keys.ts';
import { dropContext, freshNamespace, redisUrl, testContext } from '../helpers/context.ts';

const FIXTURE = new URL('../fixtures/rule-edges.ndjson', import.meta.url).pathname;
const SCRIPT = new URL('../../scripts/produce.ts', import.meta.url).pathname;

/** Every event waiting in the namespace's shard queues, in job order per shard (no worker runs in these tests). */
async function queued(context: Context): Promise<{ eventId: string; cardId: string }[]> {
  const out: { eventId: string; cardId: string }[] = [];
  for (let shard = 0; shard < context.settings.config.pipeline.shards; shard++) {
    const q = new Queue<BatchJobData>(riskQueueName(shard), { connection: context.queueConnection, prefix: context.keys.queuePrefix(riskQueueName(shard)) });
    const jobs = await q.getJobs(['wait'], 0, -1, true);
    for (const job of jobs) out.push(...(job.data.events as { eventId: string; cardId: string }[]));
    await q.close();
  }
  return out;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, ...args], {
    env: { ...process.env, REDIS_URL: redisUrl(), LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return once(child, 'exit').then(([code]) => ({ code: code as number | null, stdout, stderr }));
}

describe('producer', () => {
  let context: Context | undefined;
  afterEach(async () => {
    if (context) await dropContext(context);
    context = undefined;
  });

  it('sends a synthetic feed of exactly --count events, every one once', async () => {
    context = testContext();
    const summary = await feed({
      source: { kind: 'synthetic', count: 3_000, users: 300, seed: 5 },
      connection: context.queueConnection,
      keys: context.keys,
      config: context.settings.config,
      cards: context.cards,
      deadLetters: context.deadLetters,
    });
    expect(summary).toMatchObject({ sent: 3_000, rejected: 0, rejectReasons: [] });
    const events = await queued(context);
    expect(events).toHaveLength(3_000);
    expect(new Set(events.map((e) => e.eventId)).size).toBe(3_000);
  });

  it('paces the feed to the rate', async () => {
    context = testContext();
    const progress: number[] = [];
    const summary = await feed({
      source: { kind: 'synthetic', count: 600, users: 50 },
      rate: 1_000,
      connection: context.queueConnection,
      keys: context.keys,
      config: context.settings.config,
      cards: context.cards,
      deadLetters: context.deadLetters,
      onProgress: (p) => progress.push(p.sent),
      progressEveryMs: 50,
    });
    expect(summary.sent).toBe(600);
    // 600 events at 1000/s cannot take less than the schedule (the last event is due at 600 ms).
    expect(summary.elapsedMs).toBeGreaterThanOrEqual(580);
    expect(progress.length).toBeGreaterThan(2);
    expect(progress.at(-1)).toBe(600);
  });

  it('sends the valid lines of a file in order and dead-letters the others with their reasons', async () => {
    context = testContext();
    const summary = await feed({
      source: { kind: 'file', path: FIXTURE },
      connection: context.queueConnection,
      keys: context.keys,
      config: context.settings.config,
      cards: context.cards,
      deadLetters: context.deadLetters,
    });
    expect(summary.sent + summary.rejected).toBe(readFileSync(FIXTURE, 'utf8').trimEnd().split('\n').length);
    expect(summary.rejected).toBeGreaterThan(0);
    expect(summary.rejectReasons.reduce((s, r) => s + r.count, 0)).toBe(summary.rejected);
    expect(summary.rejectReasons.map((r) => r.reason)).toContain('amount must be a number of fen (integer)');
    expect(await context.deadLetters.count()).toBe(summary.rejected);
    // Counted by reason where Prometheus reads producer refusals (riskmon_producer_rejected_events): lines that
    // are no event too, not only valid events refused (before, those labels were declared and never counted).
    const counted = Object.fromEntries(Object.entries(await context.redis.hgetall(context.keys.producerRejections)).map(([k, v]) => [k, Number(v)]));
    expect(Object.values(counted).reduce((a, b) => a + b, 0)).toBe(summary.rejected);
    expect(counted.invalid_field).toBeGreaterThan(0);
    // And Prometheus reads them: the service's scrape of that hash.
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.observe({ queues: [], redis: context.redis, keys: context.keys, settlementStats: () => context!.ledger.stats(), caseCounts: (t) => context!.cases.counts(t), build: { version: 't', configVersion: 't' } });
    const text = await metrics.registry.getSingleMetricAsString('riskmon_producer_rejected_events');
    for (const [reason, n] of Object.entries(counted)) expect(text).toContain(`riskmon_producer_rejected_events{reason="${reason}"} ${n}`);
    const events = await queued(context);
    expect(events).toHaveLength(summary.sent);
    // Each user's events wait in their shard queue in file order.
    const position = new Map(
      readFileSync(FIXTURE, 'utf8')
        .split('\n')
        .flatMap((line, i) => {
          const id = /"eventId": ?"([^"]+)"/.exec(line)?.[1];
          const card = /"cardId": ?"([^"]+)"/.exec(line)?.[1];
          return id && card ? [[`${id} ${card}`, i] as const] : [];
        }),
    );
    const byUser = new Map<string, number[]>();
    for (const e of events as { eventId: string; cardId: string; userId?: string }[]) byUser.set(e.userId!, [...(byUser.get(e.userId!) ?? []), position.get(`${e.eventId} ${e.cardId}`)!]);
    for (const order of byUser.values()) expect(order).toEqual([...order].sort((a, b) => a - b));
    const letters = await context.deadLetters.list();
    expect(letters.every((l) => l.source.startsWith(`produce:${summary.runId}:`))).toBe(true);
  });

  it('runs from the command line and prints a summary', async () => {
    const namespace = freshNamespace('produce');
    context = testContext({ namespace });
    const r = await run(['--synthetic', '--count', '500', '--users', '40', '--rate', '0', '--namespace', namespace]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^sent +500 events to namespace ${namespace}$`, 'm'));
    expect(r.stdout).toMatch(/^rejected +0 at the edge/m);
    expect(r.stdout).toMatch(/^elapsed +\d+\.\d s \(\d+ events\/s\)$/m);
    expect(await queued(context)).toHaveLength(500);

    const file = join(mkdtempSync(join(tmpdir(), 'riskmon-produce-')), 'bad.ndjson');
    writeFileSync(file, `{"type":"charge"}\nnot json\n`);
    const j = await run(['--file', file, '--namespace', namespace, '--json']);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({ namespace, sent: 0, rejected: 2 });
  });

  it('fails at once with a clear message when Redis is down', async () => {
    const port = await freePort();
    const r = await run(['--synthetic', '--count', '10'], { REDIS_URL: `redis://127.0.0.1:${port}` });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`produce: Redis is not reachable at redis://127.0.0.1:${port}`);
    expect(r.stderr).toContain('Start it (redis-server, or docker run -d -p 127.0.0.1:6379:6379 redis:7.4-alpine) or set REDIS_URL.');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('explains its usage', async () => {
    const r = await run(['--synthetic', '--file', 'x.ndjson']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('produce: give either --file <events.ndjson> or --synthetic');
    expect(r.stderr).toContain('usage: npm run produce --');
    const missing = await run(['--file', '/nonexistent/events.ndjson']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('input file not found: /nonexistent/events.ndjson');
  });
});

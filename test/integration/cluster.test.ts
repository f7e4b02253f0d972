/**
 * The same service on a real Redis Cluster (3 masters, 3 replicas, cluster-enabled nodes that refuse a cross-slot
 * script): the fixtures decide, settle and calibrate exactly as on one Redis, through the same tools, with nothing
 * but RISKMON_REDIS_CLUSTER set; and the shards' keys spread over every master.
 */
import { testBatch } from '../helpers/batch.ts';
import { settlementLog } from '../helpers/settlement.ts';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Context } from '../../src/context.ts';
import { masterNodes, scanAll } from '../../src/redis/client.ts';
import { parseClusterSeeds } from '../../src/redis/target.ts';
import { replay } from '../../src/replay/replay.ts';
import { readNdjson, runTool } from '../helpers/cli.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { dropContext, dropNamespace, freshNamespace, redisUrl, testContext } from '../helpers/context.ts';
import { calibrate, calibrationWorker } from '../helpers/quota.ts';

const fixture = (name: string) => join(import.meta.dirname, '../fixtures', name);
let cluster: TestCluster;
let dir: string;
let configFile: string;
const singleNamespaces: string[] = [];

/** The tools' environment: one Redis, or the cluster, never both; 16 shards, so slots spread over the masters. */
const single = () => ({ REDIS_URL: redisUrl(), RISKMON_REDIS_CLUSTER: '', RISKMON_CONFIG: configFile });
const onCluster = () => ({ REDIS_URL: '', RISKMON_REDIS_CLUSTER: cluster.seeds, RISKMON_CONFIG: configFile });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'riskmon-cluster-'));
  configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify({ pipeline: { shards: 16 } }));
  cluster = await startCluster({ masters: 3, replicasPerMaster: 1 });
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
  if (singleNamespaces.length) {
    const { Redis } = await import('ioredis');
    const redis = new Redis(redisUrl());
    for (const n of singleNamespaces) await dropNamespace(redis, n);
    redis.disconnect();
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Replays the rule-edge fixture with its lists through `npm run replay`, then releases and reports 2026-03-11. */
async function edgesThrough(env: Record<string, string>, namespace: string) {
  const out = join(dir, `${namespace}.out.ndjson`);
  const r = await runTool('replay', [fixture('rule-edges.ndjson'), '--lists', fixture('rule-edges.lists.json'), '--out', out, '--namespace', namespace], env);
  expect(r.code, r.stderr).toBe(0);
  const release = await runTool('settlement', ['release', '--now', '2026-03-11T03:00:00+08:00', '--namespace', namespace], env);
  expect(release.code, release.stderr).toBe(0);
  const report = await runTool('settlement', ['report', '--date', '2026-03-11', '--json', '--namespace', namespace], env);
  expect(report.code, report.stderr).toBe(0);
  const dead = await runTool('dead-letter', ['list', '--namespace', namespace, '--json'], env);
  expect(dead.code, dead.stderr).toBe(0);
  return {
    decisions: readNdjson(readFileSync(out, 'utf8')),
    report: JSON.parse(report.stdout) as unknown,
    deadLetters: readNdjson<{ reason: string }>(dead.stdout).map((d) => d.reason).sort(),
  };
}

describe('on a Redis Cluster of 3 masters and 3 replicas', () => {
  it('decides, dead-letters and settles the rule-edge fixture exactly as one Redis does', { timeout: 180_000 }, async () => {
    const namespace = freshNamespace('cluster');
    singleNamespaces.push(namespace);
    const [one, many] = [await edgesThrough(single(), namespace), await edgesThrough(onCluster(), namespace)];
    const expected = readNdjson(readFileSync(fixture('rule-edges.expected.ndjson'), 'utf8'));
    expect(many.decisions).toHaveLength(expected.length);
    many.decisions.forEach((line, i) => expect(line, `line ${i + 1}`).toMatchObject(expected[i]!));
    expect(many).toEqual(one);
    expect((many.report as { merchants: unknown[] }).merchants.length).toBeGreaterThan(0);

    // The namespace's keys are on every master (16 shards' slots spread over the three).
    const ctx = testContext({ pipeline: { shards: 16 } }, parseClusterSeeds(cluster.seeds));
    try {
      await ctx.redis.ping();
      const perMaster = await Promise.all(
        masterNodes(ctx.redis).map(async (node) => {
          let n = 0;
          let cursor = '0';
          do {
            const [next, found] = await node.scan(cursor, 'MATCH', `rm:${namespace}:*`, 'COUNT', 1000);
            n += found.length;
            cursor = next;
          } while (cursor !== '0');
          return n;
        }),
      );
      expect(perMaster).toHaveLength(3);
      for (const n of perMaster) expect(n).toBeGreaterThan(0);
      let all = 0;
      for await (const batch of scanAll(ctx.redis, `rm:${namespace}:*`)) all += batch.length;
      expect(all).toBe(perMaster.reduce((a, b) => a + b, 0));
    } finally {
      await ctx.close();
    }
  });

  it('runs the review queue across masters: cases taken once each, released, cancelled, approved, paid once', { timeout: 120_000 }, async () => {
    const ctx = testContext({ pipeline: { shards: 8 }, cases: { fourEyesAboveFen: 5_000 } }, parseClusterSeeds(cluster.seeds));
    try {
      // Six users' bursts (three charges on one card in ten minutes: the third held), their shards on every master.
      const users = Array.from({ length: 6 }, (_, i) => `cq-${i}`);
      for (const [i, u] of users.entries()) {
        const events = [0, 1, 2].map((m) => ({ type: 'charge', eventId: `${u}-c${m}`, userId: u, merchantId: 'm-cluster', cardId: `card-${u}`, amount: m < 2 ? 100 : i === 0 ? 8_000 : 1_000 + i, occurredAt: `2026-03-10T10:0${m}:00+08:00` }));
        expect((await ctx.processor.process(testBatch(events), `cluster-cases:${u}`)).at(-1)).toMatchObject({ outcome: 'review' });
      }
      expect(new Set(await Promise.all(users.map((u) => cluster.masterOf(ctx.keys.cases(ctx.keys.shardOf(u))))))).toHaveProperty('size', 3);
      const t1 = Date.parse('2026-03-10T19:00:00Z');
      const taken = await Promise.all(users.map((_, i) => ctx.cases.next(i % 2 ? 'ana' : 'ben', t1)));
      expect(new Set(taken.map((c) => c!.id)).size).toBe(6);
      expect(await ctx.cases.next('carl', t1)).toBeUndefined();
      const held = (id: string) => taken.find((c) => c!.id === id)!.lockedBy!;
      await ctx.cases.release('cq-0-c2', held('cq-0-c2'), 'large, usual', t1);
      await ctx.cases.approve('cq-0-c2', 'sue', 'ok', t1 + 1);
      await ctx.cases.release('cq-1-c2', held('cq-1-c2'), '', t1);
      await ctx.cases.cancel('cq-2-c2', held('cq-2-c2'), false, 'fraud', t1);
      await ctx.processor.process(testBatch([{ type: 'complaint', eventId: 'cq-complaint', userId: 'cq-3', chargeId: 'cq-3-c2', reason: 'not me', occurredAt: '2026-03-11T10:00:00+08:00' }]), 'cluster-cases:complaint');
      expect(await ctx.cases.counts(t1)).toMatchObject({ locked: 3, pendingApproval: 0 });
      // Long after every deadline: the released, the approved and the auto-released are paid once; the cancelled
      // and the frozen never.
      await ctx.ledger.releaseDue(t1 + 10 * 86_400_000);
      const paid = (await settlementLog(ctx.redis, ctx.keys)).map((e) => e.eventId).filter((id) => id.endsWith('-c2')).sort();
      expect(paid).toEqual(['cq-0-c2', 'cq-1-c2', 'cq-4-c2', 'cq-5-c2']);
      expect(await ctx.cases.get('cq-4-c2')).toMatchObject({ outcome: 'auto_released' });
      expect(await ctx.cases.get('cq-3-c2')).toMatchObject({ status: 'open', frozen: true });
    } finally {
      await dropContext(ctx);
    }
  });

  it('replays and calibrates the quota fixture as one Redis does: the same quotas and histories', { timeout: 180_000 }, async () => {
    const expected = JSON.parse(readFileSync(fixture('quota-calibration.expected.json'), 'utf8')) as {
      runs: { runId: string; accounts: number; calibrated: number; up: number; down: number; unchanged: number; warnings: number }[];
      accounts: Record<string, { channel: string; quota: number; history: { runId: string; before: number; after: number }[] }>;
    };
    const results = async (context: Context) => {
      await replay({ context, inputPath: fixture('quota-calibration.ndjson'), outputPath: join(dir, `${context.keys.namespace}.ndjson`) });
      const worker = await calibrationWorker(context);
      const runs = [];
      try {
        for (const run of expected.runs) {
          const { runId, accounts, calibrated, up, down, unchanged, warnings } = await calibrate(context, run.runId);
          runs.push({ runId, accounts, calibrated, up, down, unchanged, warnings });
        }
      } finally {
        await worker.close();
      }
      const accounts: Record<string, unknown> = {};
      for (const userId of Object.keys(expected.accounts)) {
        const view = await context.quotaAccounts.show(userId, context.calibrator, Date.parse('2026-04-02T00:00:00+08:00'));
        accounts[userId] = { channel: view.channel, quota: view.quota, history: view.history.map(({ runId, before, after }) => ({ runId, before, after })) };
      }
      return { decisions: readNdjson(readFileSync(join(dir, `${context.keys.namespace}.ndjson`), 'utf8')), runs, accounts };
    };
    // The default shard count: replay's worker processes read the configuration from the environment.
    const oneRedis = testContext();
    const onTheCluster = testContext({}, parseClusterSeeds(cluster.seeds));
    try {
      const [one, many] = [await results(oneRedis), await results(onTheCluster)];
      expect(many.runs).toEqual(expected.runs);
      for (const [userId, want] of Object.entries(expected.accounts)) {
        expect(many.accounts[userId], userId).toEqual({ channel: want.channel, quota: want.quota, history: want.history.map(({ runId, before, after }) => ({ runId, before, after })) });
      }
      expect(many).toEqual(one);
    } finally {
      await dropContext(oneRedis);
      await onTheCluster.close();
    }
  });
});

/**
 * npm run backtest: the real pipeline twice, in fresh namespaces, compared line by line; and the same candidate,
 * published, decides live traffic exactly as its backtest said.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.ts';
import { parseDecision } from '../../src/decisions/decision.ts';
import { syntheticCharges } from '../../src/events/synthetic.ts';
import { silentLogger } from '../../src/logger.ts';
import { feed } from '../../src/pipeline/feed.ts';
import { backtest, type BacktestSummary } from '../../src/replay/backtest.ts';
import type { ReplayLine } from '../../src/replay/replay.ts';
import { RULE_NAMES } from '../../src/rules/registry.ts';
import { readNdjson, runTool } from '../helpers/cli.ts';
import { freshNamespace, redisUrl } from '../helpers/context.ts';
import { Keys } from '../../src/redis/keys.ts';
import { decisionKey } from '../helpers/shards.ts';
import { startTestService, stopTestService } from '../helpers/service.ts';

const fixture = (name: string) => new URL(`../fixtures/${name}`, import.meta.url).pathname;
const EDGE_LINES = readFileSync(fixture('rule-edges.ndjson'), 'utf8').trimEnd().split('\n').length;
let dir: string;
let redis: Redis;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'riskmon-backtest-'));
  redis = new Redis(redisUrl());
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  redis.disconnect();
});

const keysOf = async (namespace: string) => (await redis.keys(`rm:${namespace}:*`)).length;

describe('npm run backtest', () => {
  it('writes the lines a candidate changes, sums them up, and removes its namespaces', async () => {
    const candidate = join(dir, 'candidate.json');
    writeFileSync(candidate, JSON.stringify({ rules: { sameCardBurst: { minCount: 2 }, nightLargeAmount: { minAmountFen: 400_000 } } }));
    const out = join(dir, 'diff.ndjson');
    const namespace = freshNamespace('bt-live');
    const r = await runTool(
      'backtest',
      [fixture('rule-edges.ndjson'), '--candidate', candidate, '--lists', fixture('rule-edges.lists.json'), '--out', out, '--json'],
      { REDIS_URL: redisUrl(), RISKMON_NAMESPACE: namespace },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout) as BacktestSummary;
    const diff = readNdjson<{ line: number; eventId: string; baseline: { outcome: string; rules: string[] }; candidate: { outcome: string; rules: string[] } }>(readFileSync(out, 'utf8'));

    // The baseline is the running configuration: the fixture's hand-written decisions.
    const expected = readNdjson<{ line: number; outcome: string; rules?: string[] }>(readFileSync(fixture('rule-edges.expected.ndjson'), 'utf8'));
    for (const d of diff) {
      const e = expected[d.line - 1]!;
      expect(d.baseline, `line ${d.line}`).toEqual({ outcome: e.outcome, rules: e.rules ?? [] });
    }
    for (const rule of RULE_NAMES) expect(summary.rules[rule]!.baseline, rule).toBe(expected.filter((e) => e.rules?.includes(rule)).length);
    // A lower night threshold declines n-5 (499,999 fen at 23:30); two charges on a card now make a burst.
    expect(diff.find((d) => d.eventId === 'n-5')).toMatchObject({ baseline: { outcome: 'approve' }, candidate: { outcome: 'decline', rules: ['night_large_amount'] } });
    expect(diff.filter((d) => d.candidate.rules.includes('same_card_burst') && !d.baseline.rules.includes('same_card_burst')).length).toBeGreaterThan(0);

    expect(summary.lines).toBe(EDGE_LINES);
    expect(summary.changed).toBe(diff.length);
    const amounts = new Map(
      readFileSync(fixture('rule-edges.ndjson'), 'utf8')
        .split('\n')
        .map((l, i) => [i + 1, (() => { try { return (JSON.parse(l) as { amount: number }).amount; } catch { return 0; } })()] as const),
    );
    const transitions: Record<string, { count: number; fen: number }> = {};
    for (const d of diff) {
      const t = (transitions[`${d.baseline.outcome}->${d.candidate.outcome}`] ??= { count: 0, fen: 0 });
      t.count++;
      t.fen += amounts.get(d.line)!;
    }
    expect(summary.transitions).toEqual(transitions);
    expect(summary.transitions['approve->decline']).toEqual({ count: 1, fen: 499_999 });

    // Nothing left behind: no backtest namespace, nothing in the live one (a tool records no layout).
    expect(await redis.keys('rm:backtest-*')).toEqual([]);
    expect(await redis.keys(`rm:${namespace}:*`)).toEqual([]);

    const text = await runTool('backtest', [fixture('rule-edges.ndjson'), '--candidate', candidate, '--out', join(dir, 'diff2.ndjson')], { REDIS_URL: redisUrl(), RISKMON_NAMESPACE: namespace });
    expect(text.code).toBe(0);
    expect(text.stdout.startsWith(`${EDGE_LINES} lines, `)).toBe(true);
    expect(text.stdout).toMatch(/^\d+ lines, \d+ changed \(baseline: the running configuration; candidate: /);
    expect(text.stdout).toMatch(/approve->decline\s+1\s+499,999/);
    expect(text.stdout).toContain('The running workers can switch to the candidate live');
    expect(await keysOf(namespace)).toBe(0);
  }, 120_000);

  it('never runs in, nor removes, the running namespace, whatever the candidate names', async () => {
    const namespace = freshNamespace('bt-running');
    const running = new Keys(namespace, 4);
    await redis.set(running.merchantListHistory, 'kept');
    const candidate = join(dir, 'named.json');
    writeFileSync(candidate, JSON.stringify({ namespace, rules: { sameCardBurst: { minCount: 2 } } }));
    const r = await runTool('backtest', [fixture('rule-edges.ndjson'), '--candidate', candidate, '--baseline', candidate, '--out', join(dir, 'named.ndjson'), '--json'], {
      REDIS_URL: redisUrl(),
      RISKMON_NAMESPACE: namespace,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ lines: EDGE_LINES, changed: 0 });
    // Only what was there.
    expect(await redis.keys(`rm:${namespace}:*`)).toEqual([running.merchantListHistory]);
    expect(await redis.get(running.merchantListHistory)).toBe('kept');
    await redis.del(running.merchantListHistory);
  }, 120_000);

  it('says when a candidate could not be published live, and refuses bad input with exit code 2', async () => {
    const wide = join(dir, 'wide.json');
    writeFileSync(wide, JSON.stringify({ rules: { sameCardBurst: { windowSeconds: 1800 } } }));
    const r = await runTool('backtest', [fixture('rule-edges.ndjson'), '--candidate', wide, '--out', join(dir, 'wide.ndjson')], { REDIS_URL: redisUrl() });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Publishing it live would be refused (it needs a restart):\n  rules.sameCardBurst.windowSeconds: at most 600 live');
    const noCandidate = await runTool('backtest', [fixture('rule-edges.ndjson'), '--out', join(dir, 'x.ndjson')], { REDIS_URL: redisUrl() });
    expect(noCandidate.code).toBe(2);
    expect(noCandidate.stderr).toContain('--candidate is required');
    const notAnObject = join(dir, 'null.json');
    writeFileSync(notAnObject, 'null');
    const refused = await runTool('backtest', [fixture('rule-edges.ndjson'), '--candidate', notAnObject, '--out', join(dir, 'x.ndjson')], { REDIS_URL: redisUrl() });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('a configuration object');
  }, 120_000);

  it('decides exactly as the same candidate, published, decides live traffic', async () => {
    // Traffic of the last hours (a live producer refuses events far behind its clock), with a merchant list.
    const now = Date.now();
    const events = [...syntheticCharges({ count: 600, users: 25, seed: 11, startMs: now - 6 * 3_600_000, spanMs: 5 * 3_600_000, prefix: 'bt' })];
    const input = join(dir, 'recent.ndjson');
    writeFileSync(input, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    const lists = join(dir, 'lists.json');
    writeFileSync(lists, JSON.stringify({ merchants: [{ id: 'm-7', from: new Date(now - 3 * 3_600_000).toISOString(), reason: 'test' }, { id: 'm-9' }] }));
    const candidate = { rules: { sameCardBurst: { minCount: 2, windowSeconds: 300 }, userDailyCap: { capFen: 1_500_000 } } };

    const started = loadSettings({ namespace: freshNamespace('bt'), env: {} });
    const resultsDir = mkdtempSync(join(dir, 'results-'));
    const result = await backtest({ started, redisTarget: redisUrl(), logger: silentLogger, inputPath: input, candidate, listsPath: lists, outputPath: join(dir, 'recent.diff.ndjson'), resultsDir });
    expect(result.publishable).toEqual({ ok: true });
    expect(result.summary.changed).toBeGreaterThan(20);
    expect(result.summary.rules.merchant_blocklisted!.candidate).toBeGreaterThan(0);
    const backtested = readNdjson<ReplayLine>(readFileSync(join(resultsDir, 'candidate.ndjson'), 'utf8'));

    const service = await startTestService({ components: ['risk'] });
    try {
      const { context } = service;
      await context.lists.loadFile(lists, 'test');
      expect((await context.rulesPublisher.publish(candidate, { by: 'test' })).version).toBe(1);
      await context.rulesPublisher.approve(1, { by: 'test-2' });
      const fed = await feed({ source: { kind: 'file', path: input }, connection: context.queueConnection, keys: context.keys, config: context.settings.config, cards: context.cards, deadLetters: context.deadLetters });
      expect(fed).toMatchObject({ sent: events.length, rejected: 0 });
      const decisionKeys = events.map((e) => decisionKey(context.keys, e.userId, e.eventId));
      for (let i = 0; i < 600 && (await context.redis.exists(...decisionKeys)) < events.length; i++) await new Promise((r) => setTimeout(r, 100));
      const live = (await context.redis.mget(...decisionKeys)).map((d) => parseDecision(d!));
      expect(live.map((d) => ({ line: events.findIndex((e) => e.eventId === d.eventId) + 1, outcome: d.outcome, rules: d.rules }))).toEqual(
        backtested.map((b) => ({ line: b.line, outcome: b.outcome, rules: b.rules })),
      );
      expect(new Set(live.map((d) => d.configVersion))).toEqual(new Set([`${context.settings.configVersion}+rules-v1`]));
    } finally {
      await stopTestService(service);
    }
  }, 180_000);
});

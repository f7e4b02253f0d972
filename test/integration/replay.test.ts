/** End to end: NDJSON files through the real pipeline (producer → shard queues → worker processes → Redis). */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { syntheticCharges } from '../../src/events/synthetic.ts';
import { readNdjson, runTool } from '../helpers/cli.ts';
import { dropNamespace, freshNamespace, redisUrl } from '../helpers/context.ts';

const dir = mkdtempSync(join(tmpdir(), 'riskmon-replay-'));
const fixture = (name: string) => join(import.meta.dirname, '../fixtures', name);
const env = () => ({ REDIS_URL: redisUrl() });
const namespaces: string[] = [];
const ns = () => {
  const n = freshNamespace('replay-test');
  namespaces.push(n);
  return n;
};

afterAll(async () => {
  const { Redis } = await import('ioredis');
  const redis = new Redis(redisUrl());
  for (const n of namespaces) await dropNamespace(redis, n);
  redis.disconnect();
});

describe('npm run replay', () => {
  it('gives the hand-written expected decision for every line of the rule-edge fixture', async () => {
    const out = join(dir, 'edges.out.ndjson');
    const namespace = ns();
    const r = await runTool('replay', [fixture('rule-edges.ndjson'), '--lists', fixture('rule-edges.lists.json'), '--out', out, '--namespace', namespace], env());
    expect(r.stderr).toContain(`${readFileSync(fixture('rule-edges.ndjson'), 'utf8').trimEnd().split('\n').length} lines`);
    expect(r.code).toBe(0);
    const got = readNdjson(readFileSync(out, 'utf8'));
    const expected = readNdjson(readFileSync(fixture('rule-edges.expected.ndjson'), 'utf8'));
    expect(got).toHaveLength(expected.length);
    got.forEach((line, i) => {
      const e = expected[i]!;
      expect(line, `line ${i + 1}`).toMatchObject(e);
      if (e.outcome === 'rejected') expect(line.error, `line ${i + 1}`).toMatch(/\w/);
      else expect(line.error).toBeUndefined();
    });

    // Rejected lines are kept with their reason for the operator.
    const dead = await runTool('dead-letter', ['list', '--namespace', namespace, '--json'], env());
    expect(dead.code).toBe(0);
    const entries = readNdjson<{ source: string; reason: string }>(dead.stdout);
    // Lines that are no valid event are kept by line; valid events the state refused (a refund of more than is left,
    // a repayment without an account) by the queue job that met them.
    const rejected = expected.filter((e) => e.outcome === 'rejected');
    const refusedByState = new Set(['cr-rf-2', 'cr-rf-3', 'cr-rp-3']);
    const badLines = rejected.filter((e) => !refusedByState.has(e.eventId as string));
    expect(entries).toHaveLength(rejected.length);
    expect(entries.map((e) => e.source).filter((s) => s.startsWith('replay:')).sort()).toEqual(badLines.map((e) => `replay:${namespace}:${e.line}`).sort());
    expect(entries.filter((e) => e.source.startsWith('queue:')).map((e) => e.reason).sort()).toEqual([
      'charge cr-2 was declined: there is nothing to refund',
      'no credit account is open for user cr-none: its repayment does not count',
      'refund of 1 fen is more than what is left of charge cr-3 (0 of its 20000 fen)',
    ]);
    expect(entries.find((e) => e.source.endsWith(`:${expected.findIndex((e) => e.eventId === 'bad-date') + 1}`))?.reason).toContain('has no day 30');

    // Settlement: everything approved on local 2026-03-10 lands in the 2026-03-11 ledger, once.
    const release = await runTool('settlement', ['release', '--now', '2026-03-11T03:00:00+08:00', '--namespace', namespace], env());
    expect(release.code).toBe(0);
    const report = JSON.parse((await runTool('settlement', ['report', '--date', '2026-03-11', '--json', '--namespace', namespace], env())).stdout) as { merchants: { count: number; grossFen: number }[] };
    const inputs = readNdjson<{ eventId: string; amount: number }>(readFileSync(fixture('rule-edges.ndjson'), 'utf8').split('\n').filter((l) => l.startsWith('{"type": "charge"')).join('\n'));
    const amountOf = new Map(inputs.reverse().map((e) => [e.eventId, e.amount]));
    // Less what the accepted refunds took back before the payment (a charge refunded in full is not paid).
    const refunded = new Map<string, number>();
    const fixtureLines = readNdjson<{ type: string; eventId: string; chargeId?: string; amount?: number }>(readFileSync(fixture('rule-edges.ndjson'), 'utf8').split('\n').filter((l) => l.startsWith('{"type": "refund"')).join('\n'));
    for (const rf of fixtureLines) {
      if (expected.find((e) => e.eventId === rf.eventId)?.outcome === 'accepted') refunded.set(rf.chargeId!, (refunded.get(rf.chargeId!) ?? 0) + rf.amount!);
    }
    expect(refunded.size).toBeGreaterThan(0);
    const paidOf = (id: string) => amountOf.get(id)! - (refunded.get(id) ?? 0);
    const settled = new Set(expected.filter((e) => e.settleAt === '2026-03-10T19:00:00.000Z' && paidOf(e.eventId as string) > 0).map((e) => e.eventId as string));
    expect(report.merchants.reduce((t, m) => t + m.count, 0)).toBe(settled.size);
    expect(report.merchants.reduce((t, m) => t + m.grossFen, 0)).toBe([...settled].reduce((s, id) => s + paidOf(id), 0));
  });

  it('decides a synthetic stream identically with 1 and with 3 worker processes', async () => {
    const input = join(dir, 'synthetic.ndjson');
    const events = [...syntheticCharges({ count: 4_000, users: 150, seed: 7 })];
    // Repeats sprinkled in: the same content gets the stored decision, other content is rejected.
    const lines = events.map((e) => JSON.stringify(e));
    const conflicts = new Set<string>();
    for (let i = 100, k = 0; i < events.length; i += 97, k++) {
      const earlier = events[i - 50]!;
      if (k % 2 === 1) conflicts.add(earlier.eventId);
      lines.splice(i, 0, JSON.stringify(k % 2 === 0 ? earlier : { ...earlier, amount: 1 }));
    }
    writeFileSync(input, lines.join('\n') + '\n');
    // Small batches: many jobs per shard queue, so three processes really compete for each queue.
    const config = join(dir, 'small-batches.json');
    writeFileSync(config, JSON.stringify({ pipeline: { maxBatch: 10, shards: 4 } }));

    const replay = (out: string, workers: string) =>
      runTool('replay', [input, '--out', join(dir, out), '--namespace', ns(), '--workers', workers, '--config', config], env());
    const one = await replay('one.ndjson', '1');
    const three = await replay('three.ndjson', '3');
    expect(one.code, one.stderr).toBe(0);
    expect(three.code, three.stderr).toBe(0);
    const a = readNdjson(readFileSync(join(dir, 'one.ndjson'), 'utf8'));
    const b = readNdjson(readFileSync(join(dir, 'three.ndjson'), 'utf8'));
    expect(a).toHaveLength(lines.length);
    expect(b).toEqual(a);
    // The stream really exercises every rule and every outcome.
    const rules = new Set(a.flatMap((l) => l.rules as string[]));
    expect([...rules].sort()).toEqual(['night_large_amount', 'same_card_burst', 'user_daily_cap']);
    expect(new Set(a.map((l) => l.outcome))).toEqual(new Set(['approve', 'review', 'decline', 'rejected']));
    const rejected = a.filter((l) => l.outcome === 'rejected');
    expect(rejected.map((l) => l.eventId).sort()).toEqual([...conflicts].sort());
    for (const l of rejected) expect(l.error).toBe('eventId reused with other content: amount differs from the event first accepted with this eventId');
    const repeats = a.filter((l, i) => a.findIndex((m) => m.eventId === l.eventId) !== i && l.outcome !== 'rejected');
    for (const r of repeats) expect(r).toEqual({ ...a.find((m) => m.eventId === r.eventId), line: r.line });
  });

  // Found in review: every replay left its fresh namespace behind (583,000 keys after a day of replays).
  it('removes the fresh namespace it made when it finishes, and keeps it with --keep', async () => {
    const { Redis } = await import('ioredis');
    const redis = new Redis(redisUrl());
    try {
      const keysOf = async (stderr: string) => {
        const name = /\(namespace (replay-[\w-]+)/.exec(stderr)?.[1];
        expect(name, stderr).toBeDefined();
        return { name: name!, keys: (await redis.keys(`rm:${name}:*`)).length };
      };
      const removed = await runTool('replay', [fixture('rule-edges.ndjson'), '--out', join(dir, 'fresh.ndjson')], env());
      expect(removed.code, removed.stderr).toBe(0);
      expect(removed.stderr).toContain(', removed: --keep keeps it)');
      expect((await keysOf(removed.stderr)).keys).toBe(0);
      expect(readNdjson(readFileSync(join(dir, 'fresh.ndjson'), 'utf8')).length).toBeGreaterThan(10);

      const kept = await runTool('replay', [fixture('rule-edges.ndjson'), '--out', join(dir, 'kept.ndjson'), '--keep'], env());
      expect(kept.code, kept.stderr).toBe(0);
      const k = await keysOf(kept.stderr);
      namespaces.push(k.name);
      expect(k.keys).toBeGreaterThan(10);
      expect(readFileSync(join(dir, 'kept.ndjson'), 'utf8')).toBe(readFileSync(join(dir, 'fresh.ndjson'), 'utf8'));
    } finally {
      redis.disconnect();
    }
  });

  it('fails clearly on a missing input file or bad arguments', async () => {
    const missing = await runTool('replay', ['/nonexistent.ndjson', '--out', join(dir, 'x.ndjson')], env());
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('input file not found: /nonexistent.ndjson');
    const noOut = await runTool('replay', [fixture('rule-edges.ndjson')], env());
    expect(noOut.stderr).toContain('--out is required');
    const badNs = await runTool('replay', [fixture('rule-edges.ndjson'), '--out', join(dir, 'y.ndjson'), '--namespace', 'no spaces'], env());
    expect(badNs.code).not.toBe(0);
    expect(badNs.stderr).toContain('namespace');
  });
});

/** `npm run decisions -- show | export`: operators and acceptance tests read stored decisions through these. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Archiver } from '../../src/archive/archiver.ts';
import { openArchiveDb } from '../../src/archive/database.ts';
import { migrateArchive } from '../../src/archive/migrate.ts';
import { silentLogger } from '../../src/logger.ts';
import type { Context } from '../../src/context.ts';
import type { Decision } from '../../src/decisions/decision.ts';
import type { ChargeEvent } from '../../src/events/schema.ts';
import { readNdjson, runTool } from '../helpers/cli.ts';
import { dropContext, dropNamespace, redisUrl, testContext } from '../helpers/context.ts';
import { decisionKey } from '../helpers/shards.ts';

let ctx: Context;
// The archive these commands fall back to: an embedded one in a temporary folder.
const archiveDir = mkdtempSync(join(tmpdir(), 'riskmon-decisions-cli-'));
const configFile = join(archiveDir, 'config.json');
writeFileSync(configFile, JSON.stringify({ archive: { dataDir: join(archiveDir, 'archive') } }));
afterAll(() => rmSync(archiveDir, { recursive: true, force: true }));
const env = () => ({ REDIS_URL: redisUrl(), RISKMON_CONFIG: configFile });
const decisions = (...args: string[]) => runTool('decisions', [...args, '--namespace', ctx.keys.namespace], env());
const PAN = '4111111111111111';
/** The key of a stored decision of charge(eventId) (its user is `u-<eventId>`). */
const keyOf = (eventId: string) => decisionKey(ctx.keys, `u-${eventId}`, eventId);
const charge = (eventId: string, over: Partial<ChargeEvent> = {}): ChargeEvent => ({
  type: 'charge',
  eventId,
  userId: `u-${eventId}`,
  merchantId: 'm-1',
  cardId: PAN,
  amount: 10_000,
  occurredAt: '2026-03-10T10:00:00+08:00',
  ...over,
});

beforeEach(async () => {
  ctx = testContext();
  // Decided through the real pipeline, with a real card number: the stored decision holds "****1111". The batch is
  // stamped at the events' own time (a v1 payload's clock is enqueuedAt), so they are not too old for it.
  const events = [charge('e-1'), charge('e-2', { cardId: '5500 0000 0000 0004' }), charge('e-3')];
  await ctx.processor.process({ v: 1, events, enqueuedAt: Date.parse('2026-03-10T10:00:05+08:00') }, 'test:decisions');
  expect(await ctx.redis.exists(...events.map((e) => decisionKey(ctx.keys, e.userId, e.eventId)))).toBe(3);
});
afterEach(async () => {
  await dropContext(ctx);
});

describe('decisions show', () => {
  it('prints the stored decision as JSON, card masked', async () => {
    const r = await decisions('show', 'e-2');
    expect(r.code, r.stderr).toBe(0);
    const shown = JSON.parse(r.stdout) as Decision;
    expect(shown).toEqual(JSON.parse((await ctx.redis.get(keyOf('e-2')))!));
    expect(shown).toMatchObject({ eventId: 'e-2', card: '****0004', merchantId: 'm-1', amount: 10_000 });
    expect(r.stdout + r.stderr).not.toMatch(/5500|4111111111111111/);
  });

  it('masks a card number a legacy record holds in another field, with separators too', async () => {
    const template = JSON.parse((await ctx.redis.get(keyOf('e-1')))!) as Decision;
    await ctx.redis.set(decisionKey(ctx.keys, `user ${PAN}`, 'legacy'), JSON.stringify({ ...template, eventId: 'legacy', userId: `user ${PAN}`, merchantId: '4111-1111-1111-1111' }), 'EX', 3_600);
    for (const args of [['show', 'legacy'], ['export']]) {
      const r = await decisions(...args);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('legacy');
      expect(r.stdout).not.toMatch(/4111[ -]?1111[ -]?1111/);
    }
  });

  it('exits 1 with a message on stderr for an eventId without a decision', async () => {
    const r = await decisions('show', 'never-seen');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`decisions: no decision for eventId "never-seen" in namespace ${ctx.keys.namespace}, in Redis or in the archive\n`);
  });

  it('shows, and exports with --archive, a decision that has left Redis, from the archive, card masked', async () => {
    const before = JSON.parse((await ctx.redis.get(keyOf('e-2')))!) as Decision;
    const db = await openArchiveDb({ databaseUrl: undefined, dataDir: join(archiveDir, 'archive') });
    try {
      await migrateArchive(db);
      const archiver = new Archiver({ redis: ctx.redis, keys: ctx.keys, db, logger: silentLogger });
      for (let n = -1; n !== 0; ) n = await archiver.archiveOnce();
    } finally {
      await db.close();
    }
    // The archiver took the whole decision out of Redis once PostgreSQL had it.
    expect(await ctx.redis.exists(keyOf('e-2'))).toBe(0);
    const r = await decisions('show', 'e-2');
    expect(r.code, r.stderr).toBe(0);
    const shown = JSON.parse(r.stdout) as Decision & { source: string; settledAt: string | null };
    expect(shown).toEqual({ ...before, occurredAt: new Date(before.occurredAt).toISOString(), settledAt: null, settlementDate: null, source: 'archive' });
    expect(r.stdout).not.toMatch(/5500|4111111111111111/);
    const exported = await decisions('export', '--archive');
    expect(exported.code, exported.stderr).toBe(0);
    expect(readNdjson<{ eventId: string; source: string }>(exported.stdout).map((d) => [d.eventId, d.source])).toEqual([
      ['e-1', 'archive'],
      ['e-2', 'archive'],
      ['e-3', 'archive'],
    ]);
  });

  it('is a usage error (exit 2) without exactly one eventId, with export options, or with another command', async () => {
    for (const args of [['show'], ['show', 'e-1', 'e-2'], ['show', 'e-1', '--since', '2026-01-01T00:00:00Z'], ['list'], []]) {
      const r = await decisions(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain('usage: npm run decisions');
      expect(r.stdout).toBe('');
    }
  });
});

describe('decisions export', () => {
  it('prints every decision as NDJSON, sorted by decidedAt then eventId, no card number', async () => {
    const r = await decisions('export');
    expect(r.code, r.stderr).toBe(0);
    const lines = readNdjson<Decision>(r.stdout);
    const stored = await Promise.all(['e-1', 'e-2', 'e-3'].map(async (id) => JSON.parse((await ctx.redis.get(keyOf(id)))!) as Decision));
    const expected = [...stored].sort((a, b) => Date.parse(a.decidedAt) - Date.parse(b.decidedAt) || (a.eventId < b.eventId ? -1 : 1));
    expect(lines).toEqual(expected);
    expect(r.stdout).not.toMatch(/4111|5500/);
    expect(lines.map((d) => d.card)).toEqual(expected.map((d) => d.card));
    expect(new Set(lines.map((d) => d.card))).toEqual(new Set(['****1111', '****0004']));
  });

  it('filters by decidedAt ≥ --since, and reads many SCAN/MGET batches (also --unsorted)', async () => {
    // 1,200 more decision records written directly, decidedAt one second apart from 2026-03-01, of users in every shard.
    const base = Date.parse('2026-03-01T00:00:00Z');
    const pipeline = ctx.redis.pipeline();
    const template = JSON.parse((await ctx.redis.get(keyOf('e-1')))!) as Decision;
    for (let i = 0; i < 1_200; i++) {
      const d = { ...template, eventId: `bulk-${String(i).padStart(4, '0')}`, userId: `u-bulk-${i}`, decidedAt: new Date(base + i * 1_000).toISOString() };
      pipeline.set(decisionKey(ctx.keys, d.userId, d.eventId), JSON.stringify(d), 'EX', 3_600);
    }
    await pipeline.exec();

    const all = await decisions('export');
    expect(all.code, all.stderr).toBe(0);
    const lines = readNdjson<Decision>(all.stdout);
    expect(lines).toHaveLength(1_203);
    expect(lines.slice(0, 1_200).map((d) => d.eventId)).toEqual(Array.from({ length: 1_200 }, (_, i) => `bulk-${String(i).padStart(4, '0')}`));

    const since = await decisions('export', '--since', new Date(base + 1_150 * 1_000).toISOString());
    expect(since.code, since.stderr).toBe(0);
    const recent = readNdjson<Decision>(since.stdout);
    expect(recent.map((d) => d.eventId)).toEqual([...Array.from({ length: 50 }, (_, i) => `bulk-${1_150 + i}`), ...lines.slice(1_200).map((d) => d.eventId)]);

    const unsorted = await decisions('export', '--unsorted');
    expect(unsorted.code, unsorted.stderr).toBe(0);
    expect(readNdjson<Decision>(unsorted.stdout).map((d) => d.eventId).sort()).toEqual(lines.map((d) => d.eventId).sort());
  });

  it('is a usage error for a bad --since or a positional argument', async () => {
    for (const args of [['export', '--since', 'yesterday'], ['export', '--since', '2026-03-01'], ['export', 'e-1']]) {
      const r = await decisions(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain('usage: npm run decisions');
    }
  });

  it('prints nothing for a namespace without decisions', async () => {
    const r = await runTool('decisions', ['export', '--namespace', `${ctx.keys.namespace}-empty`], env());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
  });
});

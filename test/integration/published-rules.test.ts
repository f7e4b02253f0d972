/**
 * Rules published without a restart: validated (refused with reasons, nothing changed), switched to by the workers
 * within seconds at a batch boundary, recorded in every decision, rolled back, and audited.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openArchiveDb } from '../../src/archive/database.ts';
import { addTestUsers, createTestDatabase, skipWithoutPostgres, type TestDatabase } from '../helpers/postgres.ts';
import { loadSettings } from '../../src/config.ts';
import type { Context } from '../../src/context.ts';
import type { ChargeEvent } from '../../src/events/schema.ts';
import { RULES_CHECK_MS, RulesPublisher, RulesRefusedError } from '../../src/rules/published.ts';
import { decideBatch, testCharge } from '../helpers/charges.ts';
import { readNdjson, runTool } from '../helpers/cli.ts';
import { dropContext, redisUrl, testContext } from '../helpers/context.ts';

let ctx: Context;
let dir: string;

const charge = testCharge;

const decide = (events: ChargeEvent[]) => decideBatch(ctx, events, Date.parse('2026-03-10T16:00:00+08:00'));
/** Past the workers' check interval: the next batch looks for a new version. */
const nextCheck = () => new Promise((r) => setTimeout(r, RULES_CHECK_MS + 50));

beforeEach(() => {
  ctx = testContext();
  dir = mkdtempSync(join(tmpdir(), 'riskmon-rules-'));
});
afterEach(async () => {
  await dropContext(ctx);
  rmSync(dir, { recursive: true, force: true });
});

describe('published rules', () => {
  it('are switched to at the next batch within seconds, and every decision records the version that decided it', async () => {
    const [first, second] = await decide([charge({ occurredAt: '2026-03-10T10:00:00+08:00' }), charge({ occurredAt: '2026-03-10T10:01:00+08:00' })]);
    expect([first!.outcome, second!.outcome]).toEqual(['approve', 'approve']);
    expect(second!.configVersion).toBe(ctx.settings.configVersion);

    const v1 = await ctx.rulesPublisher.publish({ rules: { sameCardBurst: { minCount: 2 } } }, { by: 'alice', note: 'card-testing wave' });
    expect(v1).toMatchObject({ version: 1, pendingApproval: true });
    // Published, not live: it waits for a second admin, who is not its publisher.
    expect(await ctx.rulesPublisher.live()).toBeNull();
    expect((await ctx.rulesPublisher.pending()).map((p) => p.version)).toEqual([1]);
    await expect(ctx.rulesPublisher.rollback(1, { by: 'dave' })).rejects.toThrow(/version 1 was never approved: approve it instead/);
    await expect(ctx.rulesPublisher.approve(1, { by: 'alice' })).rejects.toThrow(/version 1 was published by alice: another admin must approve it/);
    expect(await ctx.rulesPublisher.approve(1, { by: 'dave' })).toEqual({ version: 1, previous: 0 });
    await expect(ctx.rulesPublisher.approve(1, { by: 'erin' })).rejects.toThrow(/live already/);
    expect(await ctx.rulesPublisher.live()).toMatchObject({ version: 1, by: 'alice', approvedBy: 'dave' });
    expect(await ctx.rulesPublisher.pending()).toEqual([]);
    await nextCheck();
    const [third] = await decide([charge({ occurredAt: '2026-03-10T10:20:00+08:00' }), charge({ occurredAt: '2026-03-10T10:21:00+08:00' })]).then((d) => d.slice(1));
    expect(third!.outcome).toBe('review');
    expect(third!.reasons[0]).toMatch(/2 charges on card \*\*\*\*0128 within 10 min \(review at 2 or more\)/);
    expect(third!.configVersion).toBe(`${ctx.settings.configVersion}+rules-v1`);
    expect(ctx.liveRules.version).toBe(1);
    expect((await ctx.metrics.registry.getSingleMetric('riskmon_rules_version')!.get()).values[0]!.value).toBe(1);

    // Rollback: an earlier version is live again, and says so in the decisions.
    await ctx.rulesPublisher.publish({ rules: { sameCardBurst: { minCount: 3 }, userDailyCap: { capFen: 15_000 } } }, { by: 'bob' });
    await ctx.rulesPublisher.approve(2, { by: 'carol' });
    await expect(ctx.rulesPublisher.rollback(2, { by: 'bob' })).rejects.toThrow(/version 2 is live already/);
    await expect(ctx.rulesPublisher.rollback(9, { by: 'bob' })).rejects.toThrow(/no published version 9/);
    expect(await ctx.rulesPublisher.rollback(1, { by: 'carol', note: 'cap too tight' })).toEqual({ version: 1, previous: 2 });
    await nextCheck();
    const [later] = await decide([charge({ userId: 'u-2', cardId: '4111111111111111', occurredAt: '2026-03-10T11:00:00+08:00', amount: 20_000 })]);
    expect(later!.outcome).toBe('approve');
    expect(later!.configVersion).toBe(`${ctx.settings.configVersion}+rules-v1`);
    expect((await ctx.rulesPublisher.history()).map((c) => [c.action, c.version, c.previous, c.by])).toEqual([
      ['publish', 1, 0, 'alice'],
      ['approve', 1, 0, 'dave'],
      ['publish', 2, 1, 'bob'],
      ['approve', 2, 1, 'carol'],
      ['rollback', 1, 2, 'carol'],
    ]);
    expect((await ctx.rulesPublisher.live())!.version).toBe(1);
  });

  it('switches every batch a process runs at once (one per shard), not only the one that looked', async () => {
    await ctx.rulesPublisher.publish({ rules: { sameCardBurst: { minCount: 2 } } }, { by: 'alice' });
    await ctx.rulesPublisher.approve(1, { by: 'bob' });
    const pair = (userId: string, cardId: string) => [charge({ userId, cardId }), charge({ userId, cardId, occurredAt: '2026-03-10T10:01:00+08:00' })];
    const runs = await Promise.all([decide(pair('u-a', '4111111111111111')), decide(pair('u-b', '5500000000000004')), decide(pair('u-c', '340000000000009'))]);
    expect(runs.map((r) => [r[1]!.outcome, r[1]!.configVersion])).toEqual(Array(3).fill(['review', `${ctx.settings.configVersion}+rules-v1`]));
  });

  it('refuses a candidate that does not validate, with its reasons, and changes nothing', async () => {
    const refused = async (candidate: unknown) => {
      const e = await ctx.rulesPublisher.publish(candidate, { by: 'alice' }).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(RulesRefusedError);
      return (e as RulesRefusedError).problems.join('\n');
    };
    expect(await refused({ rules: { sameCardBurst: { minCount: 1 } } })).toMatch(/rules\.sameCardBurst\.minCount/);
    expect(await refused({ rules: { noSuchRule: {} } })).toMatch(/noSuchRule/);
    expect(await refused({ rules: { nightLargeAmount: { from: '01:00', to: '01:00' } } })).toMatch(/must differ from "from"/);
    // Beyond what the kept state allows live: a longer burst window, a higher count.
    expect(await refused({ rules: { sameCardBurst: { windowSeconds: 1200 } } })).toMatch(/rules\.sameCardBurst\.windowSeconds: at most 600 live/);
    expect(await refused({ rules: { sameCardBurst: { minCount: 5 } } })).toMatch(/rules\.sameCardBurst\.minCount: at most 3 live/);
    // Restart-only parts.
    expect(await refused({ timezone: 'Asia/Tokyo', rules: {} })).toMatch(/^timezone: differs from the running configuration and needs a restart/);
    expect(await refused([])).toMatch(/a candidate is a configuration object/);
    const e = (await ctx.rulesPublisher.publish({ rules: {} }, { by: ' ', note: 'after 4111 1111 1111 1111 was tested' }).catch((err: unknown) => err)) as RulesRefusedError;
    expect(e.problems).toEqual(['--by is empty', '--note holds a card number: write at most its last four digits']);
    expect(await ctx.rulesPublisher.live()).toBeNull();
    expect(await ctx.rulesPublisher.history()).toEqual([]);
    // The same parts unchanged are fine.
    expect((await ctx.rulesPublisher.publish({ timezone: ctx.settings.config.timezone, rules: { userDailyCap: { capFen: 100_000 } } }, { by: 'alice' })).version).toBe(1);
  });

  it('a candidate changes only what it names: the next version keeps what the live one set', async () => {
    await ctx.rulesPublisher.publish({ rules: { userDailyCap: { capFen: 15_000 } } }, { by: 'alice' });
    await ctx.rulesPublisher.approve(1, { by: 'bob' });
    const v2 = await ctx.rulesPublisher.publish({ rules: { sameCardBurst: { minCount: 2 } } }, { by: 'bob' });
    expect(v2.rules).toMatchObject({ userDailyCap: { capFen: 15_000 }, sameCardBurst: { minCount: 2 } });
    expect(v2.configVersion).toBe(ctx.settings.configVersion);
  });

  it('a worker refuses a version completed from another configuration, counts it, and keeps its rules', async () => {
    // Published by someone running another configuration file (a longer burst window, a lower cap).
    const other = loadSettings({ namespace: ctx.keys.namespace, env: {}, overrides: { rules: { sameCardBurst: { windowSeconds: 3600 }, userDailyCap: { capFen: 1_000 } } } });
    const foreign = new RulesPublisher(ctx.redis, ctx.keys, other);
    await foreign.publish({ rules: { sameCardBurst: { windowSeconds: 1800 } } }, { by: 'alice' });
    await foreign.approve(1, { by: 'bob' });
    const [a, b] = await decide([charge({ occurredAt: '2026-03-10T10:00:00+08:00' }), charge({ occurredAt: '2026-03-10T10:15:00+08:00' })]);
    expect(b!.configVersion).toBe(ctx.settings.configVersion);
    expect([a!.outcome, b!.outcome]).toEqual(['approve', 'approve']);
    expect(ctx.liveRules.version).toBe(0);
    expect((await ctx.metrics.registry.getSingleMetric('riskmon_rules_refused_total')!.get()).values[0]!.value).toBe(1);
    // And this configuration's publisher refuses to build on that version, or to roll back to it.
    await expect(ctx.rulesPublisher.publish({ rules: {} }, { by: 'bob' })).rejects.toThrow(/the live version 1 was published over configuration cfg-\w+, and this process runs/);
    await expect(ctx.rulesPublisher.check({ rules: {} })).resolves.toMatchObject({ ok: false });
  });
});

describe.skipIf(skipWithoutPostgres())('npm run rules', () => {
  // Publishing, approving and rolling back need an admin's token (src/api/operator.ts).
  let database: TestDatabase;
  const tokens: Record<string, string> = {};
  beforeAll(async () => {
    database = await createTestDatabase();
    Object.assign(tokens, await addTestUsers(database.url, { alice: 'admin', bob: 'admin', carol: 'admin', sam: 'supervisor' }));
  });
  afterAll(async () => database?.drop());
  const env = (who?: string) => ({ REDIS_URL: redisUrl(), RISKMON_NAMESPACE: ctx.keys.namespace, DATABASE_URL: database.url, ...(who ? { RISKMON_TOKEN: tokens[who]! } : {}) });

  it('checks, publishes, shows, rolls back and lists the history from the command line', async () => {
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ rules: { userDailyCap: { capFen: 2_000_000 } } }));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ rules: { sameCardBurst: { windowSeconds: 7200 } }, pipeline: { shards: 7 } }));

    const check = await runTool('rules', ['check', good], env());
    expect(check.code).toBe(0);
    expect(check.stdout).toContain('valid');
    const refused = await runTool('rules', ['publish', bad], env('alice'));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('the candidate is refused, nothing changed');
    expect(refused.stderr).toContain('pipeline: differs from the running configuration and needs a restart');
    const noToken = await runTool('rules', ['publish', good], env());
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toContain("rules publish needs an admin's API token in RISKMON_TOKEN");
    const supervisor = await runTool('rules', ['publish', good], env('sam'));
    expect(supervisor.stderr).toContain('rules publish needs the admin role; sam is supervisor');
    const by = await runTool('rules', ['publish', good, '--by', 'alice'], env('alice'));
    expect(by.code).toBe(2);
    expect(by.stderr).toContain('--by is gone');

    const published = await runTool('rules', ['publish', good, '--note', 'lower cap'], env('alice'));
    expect(published.stderr).toBe('');
    expect(published.stdout).toContain('published rules version 1, pending approval');
    expect((await runTool('rules', ['show'], env())).stdout).toMatch(/pending approval: version 1, published .* by alice: lower cap/);
    const self = await runTool('rules', ['approve', '1'], env('alice'));
    expect(self.code).toBe(1);
    expect(self.stderr).toContain('another admin must approve it');
    const approved = await runTool('rules', ['approve', '1'], env('bob'));
    expect(approved.stdout).toContain('rules version 1 approved by bob and live (was 0)');
    const shown = JSON.parse((await runTool('rules', ['show', '--json'], env())).stdout) as { version: number; rules: { userDailyCap: { capFen: number } }; by: string; source: string };
    expect(shown).toMatchObject({ version: 1, by: 'alice', approvedBy: 'bob', source: good, rules: { userDailyCap: { capFen: 2_000_000 } } });
    // Published complete: every rule's configuration is in it.
    expect(Object.keys(shown.rules).sort()).toEqual(Object.keys(ctx.settings.rulesInput as object).sort());

    await runTool('rules', ['publish', good], env('bob'));
    await runTool('rules', ['approve', '2'], env('carol'));
    const back = await runTool('rules', ['rollback', '1'], env('carol'));
    expect(back.stdout).toContain('rules version 1 is live again (was 2)');
    const history = readNdjson<{ action: string; version: number; by: string; note?: string }>((await runTool('rules', ['history', '--json'], env())).stdout);
    expect(history.map((h) => `${h.action} ${h.version} ${h.by}`)).toEqual(['publish 1 alice', 'approve 1 bob', 'publish 2 bob', 'approve 2 carol', 'rollback 1 carol']);
    expect(history[0]!.note).toBe('lower cap');
    // Each governed command, refused ones too, is in the audit trail, by the token's name.
    const db = await openArchiveDb({ databaseUrl: database.url, dataDir: '' });
    try {
      const audit = await db.query<{ user_name: string | null; route: string; status: number }>(`SELECT user_name, route, status FROM riskmon.audit ORDER BY id`);
      expect(audit.rows.map((r) => `${r.user_name} ${r.route} ${r.status}`)).toEqual([
        'alice cli: rules publish 409',
        'null cli: rules publish 401',
        'sam cli: rules publish 403',
        'alice cli: rules publish 200',
        'alice cli: rules approve 409',
        'bob cli: rules approve 200',
        'bob cli: rules publish 200',
        'carol cli: rules approve 200',
        'carol cli: rules rollback 200',
      ]);
    } finally {
      await db.close();
    }
  }, 90_000);
});

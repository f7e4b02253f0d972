/**
 * Producer backpressure from the archive: a shard with archive.backpressureEntries decisions the archive has not
 * taken accepts nothing more (send refuses, sendWhenReady waits until the archiver catches up), long before the
 * stream's cap would drop decisions; a namespace no archiver reads is not held back.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Archiver } from '../../src/archive/archiver.ts';
import type { ArchiveDb } from '../../src/archive/database.ts';
import { silentLogger } from '../../src/logger.ts';
import { BackpressureError } from '../../src/pipeline/producer.ts';
import { dropContext, redisUrl, testContext } from '../helpers/context.ts';
import { runTool } from '../helpers/cli.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testCharge } from '../helpers/charges.ts';
import { testBatch } from '../helpers/batch.ts';
import { openTestArchive, skipWithoutPostgres } from '../helpers/postgres.ts';

const skip = skipWithoutPostgres();
let archive: Awaited<ReturnType<typeof openTestArchive>> | undefined;
let db: ArchiveDb;
beforeAll(async () => {
  if (skip) return;
  archive = await openTestArchive();
  db = archive.db;
});
afterAll(async () => archive?.close());

describe.skipIf(skip)('archive backpressure', () => {
  let ctx: ReturnType<typeof testContext> | undefined;
  afterEach(async () => {
    if (ctx) await dropContext(ctx);
    ctx = undefined;
  });

  const CLOCK = Date.parse('2026-12-01T02:00:00Z');
  function userIn(c: ReturnType<typeof testContext>, shard: number, i: number): string {
    for (let n = 0; ; n++) {
      const u = `${c.keys.namespace}-u${i}-${n}`;
      if (c.keys.shardOf(u) === shard) return u;
    }
  }
  /** `n` decisions in shard 0's stream, none archived. */
  async function fillShard0(c: ReturnType<typeof testContext>, n = 120) {
    const charges = Array.from({ length: n }, (_, i) =>
      testCharge({ eventId: `${c.keys.namespace}-f${i}`, userId: userIn(c, 0, i % 30), cardId: '4111111111111111', occurredAt: new Date(CLOCK - 3_600_000 + i * 1000).toISOString() }),
    );
    await c.processor.process(testBatch(charges, { clockMs: CLOCK }), 'test:fill');
    expect(await c.redis.xlen(c.keys.decisionStream(0))).toBe(n);
  }
  const charge = (c: ReturnType<typeof testContext>, shard: number, id: string) =>
    testCharge({ eventId: `${c.keys.namespace}-${id}`, userId: userIn(c, shard, 99), occurredAt: new Date(CLOCK - 60_000).toISOString() });

  it('refuses a shard whose archive is behind, waits in sendWhenReady until the archiver catches up', async () => {
    const c = (ctx = testContext({ archive: { backpressureEntries: 100 } }));
    await fillShard0(c);
    const archiver = new Archiver({ redis: c.redis, keys: c.keys, db, logger: silentLogger, batchSize: 10 });
    await archiver.ensureGroups();
    const producer = await c.openProducer({ clock: () => CLOCK });
    try {
      expect(() => producer.send(charge(c, 0, 'held'))).toThrow(BackpressureError);
      expect(() => producer.send(charge(c, 0, 'held'))).toThrow(/decision stream holds 120 entries the archive has not taken \(limit 100: /);
      producer.send(charge(c, 1, 'other-shard'));
      let sent = false;
      const waiting = producer.sendWhenReady(charge(c, 0, 'waited'), 30_000).then(() => (sent = true));
      await new Promise((r) => setTimeout(r, 200));
      expect(sent).toBe(false);
      // Three rounds of 10 bring shard 0 below the limit (120 - 30 = 90).
      await archiver.archiveOnce();
      await archiver.archiveOnce();
      await archiver.archiveOnce();
      await waiting;
      expect(sent).toBe(true);
      await producer.flush();
    } finally {
      await producer.close();
    }
  });

  it('npm run produce waits for the archive rather than fail or drop a line', async () => {
    const c = (ctx = testContext({ archive: { backpressureEntries: 100 } }));
    await fillShard0(c);
    const archiver = new Archiver({ redis: c.redis, keys: c.keys, db, logger: silentLogger, batchSize: 10 });
    await archiver.ensureGroups();
    const dir = mkdtempSync(join(tmpdir(), 'riskmon-produce-wait-'));
    try {
      const configFile = join(dir, 'config.json');
      writeFileSync(configFile, JSON.stringify({ archive: { backpressureEntries: 100 } }));
      const file = join(dir, 'events.ndjson');
      const now = Date.now();
      writeFileSync(file, Array.from({ length: 5 }, (_, i) => JSON.stringify({ ...charge(c, 0, `w${i}`), occurredAt: new Date(now - 60_000 + i).toISOString() })).join('\n') + '\n');
      const producing = runTool('produce', ['--file', file, '--rate', '0', '--json'], { REDIS_URL: redisUrl(), RISKMON_NAMESPACE: c.keys.namespace, RISKMON_CONFIG: configFile });
      let done = false;
      void producing.then(() => (done = true));
      await new Promise((r) => setTimeout(r, 4_000));
      expect(done).toBe(false); // waiting: its shard's archive is behind
      for (let n = -1; n !== 0; ) n = await archiver.archiveOnce();
      const r = await producing;
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ sent: 5, rejected: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('does not hold back a namespace no archiver reads', async () => {
    const c = (ctx = testContext({ archive: { backpressureEntries: 100 } }));
    await fillShard0(c);
    const producer = await c.openProducer({ clock: () => CLOCK });
    try {
      producer.send(charge(c, 0, 'free'));
      await producer.flush();
    } finally {
      await producer.close();
    }
  });

  it('holds back below the stream cap whatever the setting (80% of retention.decisionStreamMaxLen)', async () => {
    const c = (ctx = testContext({ archive: { backpressureEntries: 1_000_000 }, retention: { decisionStreamMaxLen: 1_000 } }));
    await fillShard0(c, 810);
    await new Archiver({ redis: c.redis, keys: c.keys, db, logger: silentLogger }).ensureGroups();
    const producer = await c.openProducer({ clock: () => CLOCK });
    try {
      expect(() => producer.send(charge(c, 0, 'capped'))).toThrow(/holds 810 entries the archive has not taken \(limit 800: archive\.backpressureEntries, at most 80% of retention\.decisionStreamMaxLen/);
    } finally {
      await producer.close();
    }
  });
});

/**
 * npm run bench:archive [-- --count 100000 --batch 100,500,2000 --embedded --out <report.md>]
 *
 * The archiver's throughput: a seeded stream is decided on a private redis-server (the rules script, in this
 * process: decisions, settlements scheduled, stream entries), then one archiver drains the decision streams into a
 * fresh PostgreSQL database (DATABASE_URL's server, else the machine's on 127.0.0.1:5432) and, with --embedded, into
 * a fresh embedded PGlite too, once per batch size. Reports decisions archived per second (two rows each: the
 * transaction and its risk record), and Redis memory per decision (20-character eventIds) before archiving, after
 * (the streams trimmed, the whole decisions dropped), and once every charge is more than a day old and paid (the
 * settlement log archived too): what Redis holds per charge for good, by kind of key.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { Archiver } from '../src/archive/archiver.ts';
import { openArchiveDb, type ArchiveDb } from '../src/archive/database.ts';
import { migrateArchive } from '../src/archive/migrate.ts';
import { runCommand, wholeNumberOption } from '../src/cli.ts';
import { loadSettings } from '../src/config.ts';
import { createContext } from '../src/context.ts';
import { silentLogger } from '../src/logger.ts';
import { startRedisServer } from '../src/redis/local-server.ts';
import { BENCH_CLOCK_MS } from './bench/paths.ts';
import { keyMemory, memoryByGroup } from './bench/redis-probe.ts';
import type { Redis as RedisConnection } from 'ioredis';
import { machineInfo, REDIS_ARGS, stream } from './bench/run.ts';

interface Row {
  database: string;
  batch: number;
  decisions: number;
  seconds: number;
  perSecond: number;
}

/** Every charge of the stream is decided more than a day before this, and due by it (review: T+1 + 48 h). */
const RELEASE_MS = Date.parse('2026-03-15T00:00:00+08:00');

/** What a key holds per charge, for the report: the kinds Redis keeps, named as docs/architecture.md names them. */
function keyKind(key: string): string {
  if (/:id:\{\d+\}:/.test(key)) return 'eventId claims';
  if (/:rec:\d+:\d+$/.test(key)) return 'charge records';
  if (key.endsWith(':rules')) return 'rule state';
  if (/:dec:/.test(key)) return 'whole decisions';
  if (key.endsWith(':decisions')) return 'decision streams';
  if (/:settle:/.test(key)) return 'settlement schedule';
  if (/:fenfu:/.test(key)) return 'ledgers and settlement logs';
  return 'other';
}

interface KindMemory {
  kind: string;
  keys: number;
  elements: number;
  bytes: number;
  listpack: number;
}

/** MEMORY USAGE (exact) of every key of the namespace, by kind, with how many keys are compact listpacks. */
async function memoryByKind(redis: RedisConnection, base: string): Promise<KindMemory[]> {
  const groups = await memoryByGroup(redis, base, keyKind);
  return Object.entries(groups)
    .map(([kind, g]) => ({ kind, keys: g.keys, elements: g.elements, bytes: g.bytes, listpack: g.encodings?.listpack ?? 0 }))
    .sort((a, b) => b.bytes - a.bytes);
}

const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function freshPostgres(name: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

runCommand(
  {
    name: 'bench:archive',
    summary: "The archiver's throughput into PostgreSQL (and, with --embedded, PGlite), per batch size, and Redis memory per decision before and after archiving.",
    usage: ['[options]'],
    options: {
      count: { type: 'string', arg: 'N', default: '100000', help: 'charges decided, then archived' },
      users: { type: 'string', arg: 'N', default: '20000', help: 'distinct users' },
      batch: { type: 'string', arg: 'N,N…', default: '100,500,2000', help: 'archive.batchSize values to measure (entries per stream per round)' },
      embedded: { type: 'boolean', help: 'also archive into a fresh embedded PGlite' },
      out: { type: 'string', arg: '<file>', help: 'also write the report here' },
    },
    notes: ['PostgreSQL: DATABASE_URL names the server whose maintenance database creates the fresh ones (default postgres://postgres@127.0.0.1:5432/postgres).'],
    examples: ['npm run bench:archive', 'npm run bench:archive -- --count 20000 --batch 500 --embedded'],
  },
  async ({ values }) => {
    const count = wholeNumberOption('count', values.count, 100_000);
    const users = wholeNumberOption('users', values.users, 20_000);
    const batches = (values.batch ?? '100,500,2000').split(',').map((b) => wholeNumberOption('batch', b.trim(), 500, { max: 10_000 }));
    const log = (line: string) => process.stderr.write(`bench:archive ${line}\n`);
    const machine = machineInfo();
    const rows: Row[] = [];
    const memory: { before: number; after: number; dayOld: number; kinds: KindMemory[] }[] = [];
    const targets = ['PostgreSQL', ...(values.embedded ? ['PGlite (embedded)'] : [])];

    for (const database of targets) {
      for (const batch of batches) {
        const server = await startRedisServer({ args: REDIS_ARGS });
        const redis = new Redis(server.url);
        const dir = mkdtempSync(join(tmpdir(), 'riskmon-bench-archive-'));
        const name = `bench_archive_${Date.now().toString(36)}`;
        const pgDb = database.startsWith('PostgreSQL') ? await freshPostgres(name) : undefined;
        let db: ArchiveDb | undefined;
        try {
          const settings = loadSettings({
            namespace: 'bench-archive',
            overrides: { pipeline: { shards: 16 }, retention: { decisionStreamMaxLen: Math.max(1_000, 2 * count) } },
            env: { RISKMON_CARD_SECRET: 'riskmon-benchmark-card-secret-0123456789' },
          });
          const ctx = createContext(settings, server.url, silentLogger);
          // 20-character eventIds, as the memory goal is stated for.
          const events = stream({ count, users, seed: 42 }).map((e, i) => ({ ...e, eventId: `evt-${i.toString(36).padStart(16, '0')}` }));
          const empty = await keyMemory(redis);
          // Decided in this process through the rules script, 500 at a time, as the workers would.
          for (let i = 0; i < events.length; i += 500) {
            const chunk = events.slice(i, i + 500);
            await ctx.processor.process({ v: 2, events: chunk, clocks: chunk.map(() => BENCH_CLOCK_MS), claimed: false, enqueuedAt: Date.now() }, `bench:${i}`);
          }
          const before = (await keyMemory(redis)) - empty;
          db = await openArchiveDb({ databaseUrl: pgDb?.url, dataDir: join(dir, 'archive') });
          await migrateArchive(db);
          const archiver = new Archiver({ redis: ctx.redis, keys: ctx.keys, db, logger: silentLogger, batchSize: batch });
          const started = performance.now();
          let archived = 0;
          for (let n = -1; n !== 0; ) archived += n = await archiver.archiveOnce();
          const seconds = (performance.now() - started) / 1000;
          const decisions = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM fenfu.transactions`)).rows[0]!.n;
          if (decisions !== count) throw new Error(`${decisions} of ${count} decisions archived`);
          const after = (await keyMemory(redis)) - empty;
          // More than a day on: everything due is paid, and its settlement archived.
          const paid = await ctx.ledger.releaseDue(RELEASE_MS);
          for (let n = -1; n !== 0; ) n = await archiver.archiveOnce();
          const settlements = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM fenfu.settlements`)).rows[0]!.n;
          if (settlements !== paid.settled) throw new Error(`${settlements} of ${paid.settled} settlements archived`);
          const dayOld = (await keyMemory(redis)) - empty;
          memory.push({ before: before / count, after: after / count, dayOld: dayOld / count, kinds: await memoryByKind(redis, ctx.keys.base) });
          rows.push({ database, batch, decisions, seconds, perSecond: decisions / seconds });
          log(`${database}, batch ${batch}: ${decisions} decisions (${archived} entries) in ${seconds.toFixed(1)} s = ${Math.round(decisions / seconds)}/s; Redis ${Math.round(before / count)} → ${Math.round(after / count)} → ${Math.round(dayOld / count)} B per decision`);
          await ctx.close();
        } finally {
          await db?.close();
          redis.disconnect();
          await server.stop();
          await pgDb?.drop();
          rmSync(dir, { recursive: true, force: true });
        }
      }
    }
    const text = [
      '## Archive benchmark run',
      '',
      `Command: \`npm run bench:archive -- ${process.argv.slice(2).join(' ')}\``.replace(' -- `', '`'),
      '',
      `Machine: ${Object.entries(machine).map(([k, v]) => `${k}: ${v}`).join('; ')}`,
      '',
      `${count} charges, ${users} users, 16 shards; one archiver draining what was decided.`,
      '',
      '| database | batch (entries per stream per round) | decisions/s archived | seconds |',
      '|---|---|---|---|',
      ...rows.map((r) => `| ${r.database} | ${r.batch} | ${Math.round(r.perSecond).toLocaleString('en-US')} | ${r.seconds.toFixed(1)} |`),
      '',
      `Redis key memory per decision (20-character eventIds; used_memory less clients and caches, less the empty server's): ${Math.round(Math.min(...memory.map((m) => m.before)))} B before archiving, ${Math.round(Math.min(...memory.map((m) => m.after)))} B after (the stream entries trimmed, the whole decisions dropped), ${Math.round(Math.min(...memory.map((m) => m.dayOld)))} B once every charge is more than a day old and paid (${new Date(RELEASE_MS).toISOString()}, the settlement logs archived).`,
      '',
      'What Redis then holds, by kind of key (MEMORY USAGE, exact; the last run):',
      '',
      '| kind | keys | of them listpack | elements | bytes | B per charge |',
      '|---|---|---|---|---|---|',
      ...memory.at(-1)!.kinds.map((k) => `| ${k.kind} | ${k.keys.toLocaleString('en-US')} | ${k.listpack.toLocaleString('en-US')} | ${k.elements.toLocaleString('en-US')} | ${k.bytes.toLocaleString('en-US')} | ${(k.bytes / count).toFixed(1)} |`),
      '',
    ].join('\n');
    process.stdout.write(text);
    if (values.out) writeFileSync(values.out, text);
  },
);
